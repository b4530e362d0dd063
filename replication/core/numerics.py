"""The arithmetic torch runs with: backend flags set for a block, and plain fp32.

Part of what decides a run's weights (core/codehash.py WEIGHT_MODULES reach it through
training/fast.py), kept apart from devices.py, which only picks and names devices.
"""

from __future__ import annotations

import contextlib
import functools

import torch


@contextlib.contextmanager
def backend_flags(flags: dict[str, bool]):
    """Set torch.backends flags (e.g. "cudnn.benchmark") for the block, then restore them."""
    saved = []
    for name, value in flags.items():
        *path, attr = name.split(".")
        owner = functools.reduce(getattr, path, torch.backends)
        saved.append((owner, attr, getattr(owner, attr)))
        setattr(owner, attr, value)
    try:
        yield
    finally:
        for owner, attr, value in reversed(saved):
            setattr(owner, attr, value)


def fp32_exact():
    """Plain fp32 matmuls and convolutions: TF32 (on by default for cuDNN convolutions)
    rounds inputs to 10 mantissa bits; Caffe ran the FCN, and faithful checks run, in fp32."""
    return backend_flags({"cudnn.allow_tf32": False, "cuda.matmul.allow_tf32": False})
