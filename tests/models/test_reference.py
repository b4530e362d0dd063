"""Released pytorch-CycleGAN-and-pix2pix generators (latest_net_G.pth) on our U-Net.

The reference network is rebuilt here from its description (replication/models/reference.py
docstring), written for this test: nested skip blocks whose `model` Sequentials give the
reference's state-dict keys, in-place activations as in the reference, and the
[encoder feature, up-output] concatenation order.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from replication import cli
from replication.core.errors import CheckpointError
from replication.inference.generate import generate
from replication.inference.translate import translate
from replication.models import build_generator, count_parameters
from replication.models.reference import (
    convert_state_dict,
    is_reference_state_dict,
    load_reference_generator,
    reference_config,
)


class SkipBlock(nn.Module):
    """One level of the reference U-Net: down, the inner levels, up; the skip is the input."""

    def __init__(self, outer: int, inner: int, *, sub: nn.Module | None = None,
                 in_channels: int | None = None, outermost: bool = False,
                 dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        innermost = sub is None
        bias = False  # BatchNorm: no conv bias (the reference's use_bias for batch norm)
        down: list[nn.Module] = [] if outermost else [nn.LeakyReLU(0.2, inplace=True)]
        down.append(nn.Conv2d(in_channels or outer, inner, 4, 2, 1, bias=bias))
        if not (outermost or innermost):
            down.append(nn.BatchNorm2d(inner))
        up_in = inner if innermost else 2 * inner
        up: list[nn.Module] = [nn.ReLU(inplace=True),
                               nn.ConvTranspose2d(up_in, outer, 4, 2, 1, bias=outermost or bias)]
        up.append(nn.Tanh() if outermost else nn.BatchNorm2d(outer))
        if dropout and not (outermost or innermost):
            up.append(nn.Dropout(0.5))
        middle = [] if innermost else [sub]
        self.model = nn.Sequential(*down, *middle, *up)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)  # [encoder feature, up-output]


class ReferenceUnet(nn.Module):
    def __init__(self, num_downs: int, ngf: int, dropout: bool = True):
        super().__init__()
        block = SkipBlock(ngf * 8, ngf * 8)  # innermost
        for _ in range(num_downs - 5):
            block = SkipBlock(ngf * 8, ngf * 8, sub=block, dropout=dropout)
        for mult in (4, 2, 1):
            block = SkipBlock(ngf * mult, ngf * mult * 2, sub=block)
        self.model = SkipBlock(3, ngf, sub=block, in_channels=3, outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def randomised(net: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights AND BatchNorm running statistics, so eval mode tests the buffers."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * 0.05)
                if m.bias is not None:
                    m.bias.copy_(torch.randn(m.bias.shape, generator=gen) * 0.1)
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + 0.1 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))
    return net


def dropout_sides(net: nn.Module, size: int) -> list[int]:
    sides = []
    hooks = [m.register_forward_hook(lambda mod, i, o: sides.append(o.shape[-1]))
             for m in net.modules() if isinstance(m, nn.Dropout)]
    with torch.no_grad():
        net.eval()(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return sorted(sides)


def compare(ref: nn.Module, ours: nn.Module, size: int, atol: float) -> None:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref.eval(), ours.eval()
        assert torch.allclose(ref(x.clone()), ours(x.clone()), rtol=0, atol=atol)
        ref.train(), ours.train()  # train mode: dropout on, BatchNorm with batch statistics
        torch.manual_seed(7)
        a = ref(x.clone())
        torch.manual_seed(7)  # same seed: the same dropout masks, drawn in the same order
        b = ours(x.clone())
        assert torch.allclose(a, b, rtol=0, atol=atol)
        torch.manual_seed(8)
        assert not torch.allclose(ours(x.clone()), b, rtol=0, atol=atol)  # dropout is on


def test_small_reference_unet_maps_exactly(float64):
    # 64 px, num_downs 6, ngf 8, in float64. Not bit-equal even so: the swapped input
    # halves of each up-conv sum the same products in another order, so the outputs agree
    # to rounding (float64 eps 2.2e-16 times a few thousand terms, through 6 levels).
    ref = randomised(ReferenceUnet(6, 8))
    state = ref.state_dict()
    assert is_reference_state_dict(state)
    ours, cfg = load_reference_generator(state)
    assert cfg.data.image_size == 64 and cfg.generator.ngf == 8
    assert cfg.generator.dropout == "pytorch_code" and cfg.generator.norm == "batch"
    assert count_parameters(ours) == count_parameters(ref)
    # the reference's dropout: only the num_downs - 5 = 1 block above the innermost (4x4)
    assert dropout_sides(ref, 64) == dropout_sides(ours, 64) == [4]
    compare(ref, ours, 64, atol=1e-12)


def outputs(net: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Eval mode, and train mode (dropout on, batch statistics) with a fixed dropout seed;
    the running statistics the train-mode pass updates are put back."""
    buffers = {name: b.clone() for name, b in net.named_buffers()}
    with torch.no_grad():
        result = {"eval": net.eval()(x.clone())}
        torch.manual_seed(7)
        result["train"] = net.train()(x.clone())
        for name, b in net.named_buffers():
            b.copy_(buffers[name])
    return result


def test_released_256px_layout_parameter_count_and_outputs():
    # unet_256 as released: num_downs 8, ngf 64, BatchNorm, dropout on.
    torch.manual_seed(0)
    ref = randomised(ReferenceUnet(8, 64))
    state = ref.state_dict()
    ours, cfg = load_reference_generator(state)
    assert count_parameters(ref) == count_parameters(ours) == 54_413_955
    assert cfg.data.image_size == 256
    same_config = build_generator(cfg.generator, 256, 3, 3)  # the config alone rebuilds it
    assert same_config.state_dict().keys() == ours.state_dict().keys()
    del same_config
    assert dropout_sides(ref, 256) == dropout_sides(ours, 256) == [4, 8, 16]
    # the outermost down-conv has no bias, the outermost up-conv has one
    assert "model.model.0.bias" not in state and "model.model.3.bias" in state
    # Not bit-equal in fp32: the swapped up-conv halves sum the same products in another
    # order. The tolerance is the fp32 rounding error of the reference itself, measured
    # against a float64 run of it: ours must be as close to that truth (within 2x), and in
    # float64 both nets must agree to 1e-10 (the mapping exact, the rest rounding).
    x = torch.randn(2, 3, 256, 256, generator=torch.Generator().manual_seed(1))
    ref32, ours32 = outputs(ref, x), outputs(ours, x)
    ref64, ours64 = outputs(ref.double(), x.double()), outputs(ours.double(), x.double())
    for mode in ("eval", "train"):
        assert torch.allclose(ours64[mode], ref64[mode], rtol=0, atol=1e-10), mode
        fp32_error = (ref32[mode].double() - ref64[mode]).abs().max().item()
        assert 0 < fp32_error < 1e-2, mode
        assert (ours32[mode].double() - ref64[mode]).abs().max() <= 2 * fp32_error, mode
    assert not torch.equal(ref64["train"], ref64["eval"])


@pytest.mark.parametrize("num_downs, sides", [(5, []), (6, [4]), (7, [4, 8]), (8, [4, 8, 16])])
def test_pytorch_code_dropout_follows_the_reference_at_every_depth(num_downs, sides):
    # the reference's dropout blocks: the num_downs - 5 above the innermost one
    ref = ReferenceUnet(num_downs, 1)
    ours, _ = load_reference_generator(ref.state_dict())
    size = 2 ** num_downs
    assert dropout_sides(ref, size) == dropout_sides(ours, size) == sides


def test_old_checkpoints_without_batch_counters_load(float64):
    # the released files predate PyTorch 0.4.1's num_batches_tracked buffers
    ref = randomised(ReferenceUnet(5, 4))
    state = {k: v for k, v in ref.state_dict().items() if "num_batches_tracked" not in k}
    ours, _ = load_reference_generator(state)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ref.eval()(x.clone()), ours.eval()(x), rtol=0, atol=1e-12)


def test_our_own_and_other_state_dicts_are_not_taken_for_the_reference():
    ours = build_generator(reference_config(ReferenceUnet(5, 4).state_dict()).generator,
                           32, 3, 3)
    assert not is_reference_state_dict(ours.state_dict())
    resnet_like = {"model.1.weight": torch.zeros(4, 3, 7, 7), "model.2.weight": torch.zeros(4)}
    assert not is_reference_state_dict(resnet_like)
    assert not is_reference_state_dict({"format": "x"}) and not is_reference_state_dict([])
    broken = dict(ReferenceUnet(5, 4).state_dict())
    broken["model.model.1.model.9.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match="unexpected"):
        convert_state_dict(broken)


# --- generate / translate with a released file ------------------------------------------

@pytest.fixture
def released(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "facades_label2photo" / "latest_net_G.pth"
    path.parent.mkdir()
    torch.save(randomised(ReferenceUnet(5, 4)).state_dict(), path)  # 32 px, like toy data
    return path


def test_generate_with_a_released_checkpoint(released, toy_dataset, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["generate", "--checkpoint", str(released), "--data", str(toy_dataset),
                     "--set", "data.direction=AtoB", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.glob("*.png")) == ["0.png", "1.png", "2.png"]
    printed = capsys.readouterr().out
    assert "data.direction=AtoB" in printed and "released" in printed
    # the same images as the reference network itself, in its default train mode
    ref = ReferenceUnet(5, 4)
    ref.load_state_dict(torch.load(released))
    ref.train()
    from replication.config.schema import DataConfig
    from replication.data.paired import TestPairs, to_uint8
    pairs = TestPairs(DataConfig(root=str(toy_dataset.parent), dataset=toy_dataset.name,
                                 image_size=32, direction="AtoB"), "test")
    torch.manual_seed(0)
    with torch.no_grad():
        for indices, x, _ in pairs.batches(1, torch.device("cpu")):
            want = to_uint8(ref(x))[0].permute(1, 2, 0).numpy().astype(int)
            got = np.asarray(Image.open(out / f"{indices[0]}.png")).astype(int)
            assert np.abs(want - got).max() <= 1  # fp32 rounding at a .5 boundary at most


def test_translate_with_a_released_checkpoint(released, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(np.full((20, 50, 3), 90, np.uint8)).save(folder / "a.jpg")
    summary = translate(released, folder, tmp_path / "out", mode="eval")
    assert summary["images"] == 1
    assert Image.open(tmp_path / "out" / "a.png").size == (50, 20)


def test_a_wrong_file_is_one_line(tmp_path, capsys):
    bogus = tmp_path / "latest_net_G.pth"
    torch.save({"model.1.weight": torch.zeros(4, 3, 7, 7)}, bogus)  # e.g. a ResNet G
    with pytest.raises(CheckpointError) as info:
        generate(bogus, tmp_path / "out")
    assert str(bogus) in str(info.value) and "\n" not in str(info.value)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(photos / "a.png")
    code = cli.main(["translate", "--checkpoint", str(bogus), "--in", str(photos),
                     "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err and "latest_net_G.pth" in err
