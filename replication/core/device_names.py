"""What a device setting may name: the machine's GPU pool (`auto`), the CPU, or a CUDA
device. Other torch device types (mps, xla, ...) are not supported here.

Torch-free, so that validating a config (config/schema.py) imports no torch; the devices
themselves are resolved in devices.py.
"""

from __future__ import annotations

import re
from typing import Any

from replication.core.errors import ConfigError

DEVICE_NAMES = re.compile(r"auto|cpu|cuda(:\d+)?")


def check_device(key: str, name: Any) -> None:
    if not isinstance(name, str) or not DEVICE_NAMES.fullmatch(name):
        raise ConfigError(f"{key}={name!r} is not a device this code runs on; use auto, cpu, "
                          "cuda or cuda:N")
