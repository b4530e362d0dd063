"""The objective against hand-computed binary cross-entropies and L1 distances."""

import math

import pytest
import torch

from replication.models import discriminator_loss, generator_loss


def softplus(z: float) -> float:
    # BCE(logit z, label 1) = -log(sigmoid(z)) = log(1 + e^-z); label 0: log(1 + e^z)
    return math.log1p(math.exp(z))


def test_zero_logits_give_log_2_per_term():
    zeros = torch.zeros(1, 1, 30, 30)
    assert discriminator_loss(zeros, zeros, scale=1.0).item() == pytest.approx(2 * math.log(2))
    # paper §3.3: D's objective is divided by 2
    assert discriminator_loss(zeros, zeros, scale=0.5).item() == pytest.approx(math.log(2))
    gan = generator_loss(zeros, torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 4), 100.0)["gan"]
    assert gan.item() == pytest.approx(math.log(2))


def test_discriminator_loss_by_hand():
    real = torch.tensor([[2.0, -1.0]])
    fake = torch.tensor([[0.5, -3.0]])
    real_term = (softplus(-2.0) + softplus(1.0)) / 2  # mean over patches, label 1
    fake_term = (softplus(0.5) + softplus(-3.0)) / 2  # label 0
    assert discriminator_loss(real, fake, scale=0.5).item() == pytest.approx(0.5 * (real_term + fake_term))
    assert discriminator_loss(real, fake, scale=1.0).item() == pytest.approx(real_term + fake_term)


def test_generator_loss_by_hand():
    fake = torch.tensor([[0.5, -1.0], [0.0, 0.25]])
    target = torch.tensor([[0.0, 1.0], [0.0, -0.25]])
    logits = torch.tensor([1.0, -2.0])
    losses = generator_loss(logits, fake, target, l1_weight=100.0)
    l1 = (0.5 + 2.0 + 0.0 + 0.5) / 4
    gan = (softplus(-1.0) + softplus(2.0)) / 2  # non-saturating: label "real" for G(x)
    assert losses["l1"].item() == pytest.approx(l1)
    assert losses["gan"].item() == pytest.approx(gan)
    assert losses["total"].item() == pytest.approx(gan + 100.0 * l1)


def test_l1_only_objective_has_zero_gan_term():
    fake, target = torch.full((1, 3, 2, 2), 0.5), torch.zeros(1, 3, 2, 2)
    losses = generator_loss(None, fake, target, l1_weight=100.0)
    assert losses["gan"].item() == 0.0
    assert losses["total"].item() == pytest.approx(50.0)


def test_extreme_logits_stay_finite():
    # sigmoid(-200) underflows to 0 in float32; the log-sum-exp form gives ~200
    loss = generator_loss(torch.tensor([-200.0]), torch.zeros(1), torch.zeros(1), 100.0)["gan"]
    assert loss.item() == pytest.approx(200.0)
    d = discriminator_loss(torch.tensor([-200.0]), torch.tensor([200.0]), scale=1.0)
    assert d.item() == pytest.approx(400.0)


def test_generator_loss_gradient_reaches_generator_output():
    fake = torch.zeros(1, 1, 2, 2, requires_grad=True)
    generator_loss(None, fake, torch.ones(1, 1, 2, 2), l1_weight=1.0)["total"].backward()
    # d/dfake mean|fake - 1| = -1/4 per element
    assert torch.allclose(fake.grad, torch.full((1, 1, 2, 2), -0.25))


def test_shape_mismatch_is_named():
    with pytest.raises(ValueError, match="same shape"):
        generator_loss(None, torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 8, 8), 100.0)
