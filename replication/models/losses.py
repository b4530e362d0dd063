"""The pix2pix objective, kept out of the networks (paper eq. 1-4, docs/method.md).

G* = arg min_G max_D L_cGAN(G, D) + lambda * L_L1(G), lambda = 100. Both GAN terms are
binary cross-entropy on D's patch logits, averaged over every patch of the batch;
binary_cross_entropy_with_logits stays finite for any logit (log-sum-exp form).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bce_against(logits: torch.Tensor, label: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       scale: float) -> torch.Tensor:
    """scale * (BCE(D(x, y), 1) + BCE(D(x, G(x)), 0)).

    paper §3.3: "we divide the objective by 2 while optimizing D" (scale=0.5).
    """
    return scale * (bce_against(real_logits, 1.0) + bce_against(fake_logits, 0.0))


def generator_loss(fake_logits: torch.Tensor | None, fake: torch.Tensor, target: torch.Tensor,
                   l1_weight: float) -> dict[str, torch.Tensor]:
    """{"total", "gan", "l1"}: total = gan + l1_weight * l1.

    gan: non-saturating loss BCE(D(x, G(x)), 1), i.e. maximise log D (paper §3.3);
    fake_logits=None is the L1-only objective (Table 1 "L1"), gan = 0.
    l1: mean |G(x) - y| over all elements, unweighted (paper eq. 3).
    """
    if fake.shape != target.shape:
        raise ValueError(f"L1 needs the generated and target images to have the same shape, "
                         f"got {tuple(fake.shape)} and {tuple(target.shape)}")
    l1 = (fake - target).abs().mean()
    gan = l1.new_zeros(()) if fake_logits is None else bce_against(fake_logits, 1.0)
    return {"total": gan + l1_weight * l1, "gan": gan, "l1": l1}
