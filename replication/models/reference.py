"""The authors' released PyTorch generators on this code's U-Net.

pytorch-CycleGAN-and-pix2pix publishes its pix2pix models (facades_label2photo, map2sat,
sat2map, ...) as `latest_net_G.pth`: the plain state dict of its `UnetGenerator`
(netG unet_256, --norm batch, dropout on: pix2pix's defaults). That network is a nest of
`UnetSkipConnectionBlock`s, the outermost one at `model.`; each block's `model` is an
nn.Sequential:

    outermost  [downconv, submodule, uprelu, upconv(bias), tanh]             0 1 2 3 4
    middle     [downrelu, downconv, downnorm, submodule, uprelu, upconv,
                upnorm, (dropout)]                                          0 1 2 3 4 5 6 7
    innermost  [downrelu, downconv, uprelu, upconv, upnorm]                 0 1 2 3 4

so level k's layers sit under `model.model.` (k = 0), `model.model.1.model.` (k = 1) and
then `3.model.` deeper for every further level. With BatchNorm no conv has a bias but the
outermost up-conv (the outermost DOWN-conv has none either), exactly as conv_bias("batch")
builds ours; no norm on the first down-conv or the 1x1 bottleneck, as ours. Dropout sits on
the num_downs - 5 middle blocks above the innermost one (`generator.dropout: pytorch_code`).

The one layout difference: a reference block returns torch.cat([x, model(x)], 1), i.e.
[encoder feature, up-output], ours concatenates [up-output, encoder feature]; so every
up-conv fed by a concatenation gets the two halves of its input channels swapped
(ConvTranspose2d weight: (in, out, k, k)). The in-place LeakyReLU of the reference also
rectifies the skip it concatenates; ours rectifies it in the next ReLU: ReLU(leaky(e)) =
ReLU(e), the same numbers (models/generators.py).
"""

from __future__ import annotations

from typing import Any

import torch

from replication.config.schema import DataConfig, ExperimentConfig, GeneratorConfig
from replication.core.errors import CheckpointError
from replication.models.generators import Generator, build_generator

RGB = 3
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
_OUTER = "model.model."  # the outermost block's Sequential


def _strip_data_parallel(state_dict: dict) -> dict:
    # a state dict saved from an nn.DataParallel wrapper (not how the reference saves)
    if state_dict and all(isinstance(k, str) and k.startswith("module.") for k in state_dict):
        return {k[len("module."):]: v for k, v in state_dict.items()}
    return state_dict


def is_reference_state_dict(obj: Any) -> bool:
    """True for a pytorch-CycleGAN-and-pix2pix UnetGenerator state dict (any norm, any
    depth), recognised by its keys: all under `model.`, the outermost down-conv at
    `model.model.0.weight` and the nested block at `model.model.1.model.`."""
    if not isinstance(obj, dict) or not obj:
        return False
    sd = _strip_data_parallel(obj)
    if not all(isinstance(k, str) and k.startswith("model.") for k in sd):
        return False
    return (isinstance(sd.get(_OUTER + "0.weight"), torch.Tensor)
            and isinstance(sd.get(_OUTER + "1.model.1.weight"), torch.Tensor))


def level_prefixes(sd: dict) -> list[str]:
    """The Sequential prefix of every level, outermost first (len = num_downs)."""
    prefixes, prefix = [_OUTER], _OUTER + "1.model."
    while prefix + "1.weight" in sd:
        prefixes.append(prefix)
        prefix += "3.model."
    return prefixes


def _describe(sd: dict) -> tuple[int, int]:
    """(num_downs, ngf), after checking the net is one this code can rebuild."""
    prefixes = level_prefixes(sd)
    depth = len(prefixes)
    first = sd[_OUTER + "0.weight"]
    ngf, in_channels = int(first.shape[0]), int(first.shape[1])
    out_channels = int(sd[_OUTER + "3.weight"].shape[1]) if _OUTER + "3.weight" in sd else -1
    if (in_channels, out_channels) != (RGB, RGB):
        raise CheckpointError(f"a reference U-Net with {in_channels} input and {out_channels} "
                              "output channels; only RGB -> RGB generators map onto this code")
    if depth < 5:
        raise CheckpointError(f"a reference U-Net with {depth} levels; its UnetGenerator "
                              "always has at least 5")
    if prefixes[1] + "1.bias" in sd or prefixes[1] + "2.running_mean" not in sd:
        raise CheckpointError("a reference U-Net without BatchNorm (--norm instance or none); "
                              "only the pix2pix models (--norm batch) are supported")
    return depth, ngf


def reference_config(state_dict: dict, name: str = "released") -> ExperimentConfig:
    """The paper's configuration with the reference's dropout placement, for the image
    size its depth implies (num_downs 8: 256 px). The direction is not in the weights:
    the caller sets it (the data's default, or --set data.direction)."""
    depth, ngf = _describe(_strip_data_parallel(state_dict))
    return ExperimentConfig(name=name,
                            generator=GeneratorConfig(ngf=ngf, dropout="pytorch_code"),
                            data=DataConfig(image_size=2 ** depth))


def _swap_halves(weight: torch.Tensor) -> torch.Tensor:
    # reference input channels [encoder feature, up-output] -> ours [up-output, encoder]
    half = weight.shape[0] // 2
    return torch.cat([weight[half:], weight[:half]], dim=0)


def convert_state_dict(state_dict: dict) -> dict:
    """The reference's state dict in our Generator's keys and channel order."""
    sd = _strip_data_parallel(state_dict)
    prefixes = level_prefixes(sd)
    n = len(prefixes)
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()

    def take(key: str) -> torch.Tensor:
        if key not in sd:
            raise CheckpointError(f"reference U-Net state dict lacks {key!r}")
        used.add(key)
        return sd[key]

    def norm(ours: str, theirs: str) -> None:
        for name in BN_KEYS:
            if name == "num_batches_tracked" and theirs + name not in sd:
                # saved before PyTorch 0.4.1 (the released models were): no counter; it
                # only matters for momentum=None, which neither code uses
                out[ours + name] = torch.tensor(0, dtype=torch.long)
                continue
            out[ours + name] = take(theirs + name)

    for k, p in enumerate(prefixes):
        if k == 0:  # outermost: [downconv, submodule, uprelu, upconv, tanh]
            out["encoder.0.0.weight"] = take(p + "0.weight")
            out[f"decoder.{n - 1}.1.weight"] = _swap_halves(take(p + "3.weight"))
            out[f"decoder.{n - 1}.1.bias"] = take(p + "3.bias")
        elif k < n - 1:  # middle: [downrelu, downconv, downnorm, sub, uprelu, upconv, upnorm]
            j = n - 1 - k  # our decoder layer mirroring encoder layer k
            out[f"encoder.{k}.1.weight"] = take(p + "1.weight")
            norm(f"encoder.{k}.2.", p + "2.")
            out[f"decoder.{j}.1.weight"] = _swap_halves(take(p + "5.weight"))
            norm(f"decoder.{j}.2.", p + "6.")
        else:  # innermost: [downrelu, downconv, uprelu, upconv, upnorm]; no concatenation
            out[f"encoder.{k}.1.weight"] = take(p + "1.weight")
            out["decoder.0.1.weight"] = take(p + "3.weight")
            norm("decoder.0.2.", p + "4.")
    left = sorted(set(sd) - used)
    if left:
        raise CheckpointError(f"reference U-Net state dict has {len(left)} unexpected "
                              f"entries (e.g. {left[0]!r}); not a pix2pix UnetGenerator")
    return out


def load_reference_generator(state_dict: dict,
                             name: str = "released") -> tuple[Generator, ExperimentConfig]:
    """Our U-Net holding the reference's weights, and the configuration that builds it."""
    cfg = reference_config(state_dict, name)
    G = build_generator(cfg.generator, cfg.data.image_size, RGB, RGB)
    ours = convert_state_dict(state_dict)
    try:
        G.load_state_dict(ours)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:200]
        raise CheckpointError(f"reference U-Net weights do not fit ({detail})") from None
    return G, cfg
