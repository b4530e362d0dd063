"""Which device a run computes on.

`cpu`, `cuda`, `cuda:N` are taken as they are. `auto` is the CPU where there is no CUDA;
with CUDA it is a free slot of a machine-wide pool of lock files, K slots per GPU
(`train.runs_per_device`), so `dvc queue start -j N` on an N-GPU machine puts one run on
each GPU instead of every run on cuda:0. A process holds its slot until it exits (the
kernel drops the lock then, also after a crash). When every slot is taken, it waits.
"""

from __future__ import annotations

import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from replication.core.device_names import check_device
from replication.core.errors import ConfigError

POOL_ENV = "REPLICATION_DEVICE_POOL"  # folder of the slot locks, shared by the machine
WAIT_S = 5.0  # between looks at the pool while every slot is taken
_HELD: dict[str, object] = {}  # this process's slot (device name -> its lock), kept to exit


def resolve_device(name: str, runs_per_device: int = 1) -> torch.device:
    """`auto` | `cpu` | `cuda` | `cuda:N` -> a device that exists here (auto: a free slot)."""
    check_device("device", name)  # anything else (mps, a typo): one line, not torch's error
    if name == "auto":
        if not torch.cuda.is_available():
            return torch.device("cpu")
        return claim(torch.cuda.device_count(), runs_per_device, pool_folder())
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} but CUDA is not available; use 'cpu' or 'auto'")
    if device.type == "cuda" and device.index is not None and \
            device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} but this machine has "
                          f"{torch.cuda.device_count()} CUDA device(s); use cuda:0 .. "
                          f"cuda:{torch.cuda.device_count() - 1} or 'auto'")
    return device


def pool_folder() -> Path:
    """$REPLICATION_DEVICE_POOL, else a per-user folder in the system's temp directory:
    every workspace of `dvc queue` (each a copy of the repository) sees the same one."""
    folder = os.environ.get(POOL_ENV) or Path(tempfile.gettempdir()) / f"replication-gpus-{os.getuid()}"
    return Path(folder)


def slots(count: int, per_device: int) -> list[tuple[int, int]]:
    """(device, slot) in the order they are handed out: one run per GPU first, then a
    second on each, ... (runs spread over the GPUs before they share one)."""
    return [(device, slot) for slot in range(per_device) for device in range(count)]


def claim(count: int, per_device: int, folder: Path, wait_s: float = WAIT_S) -> torch.device:
    """The first free slot of `count` GPUs x `per_device` runs, held by this process."""
    if _HELD:  # one process, one device: its later runs share the slot it holds
        return torch.device(next(iter(_HELD)))
    if count < 1 or per_device < 1:
        raise ConfigError(f"a device pool of {count} GPU(s) x {per_device} run(s) is empty; "
                          "set train.runs_per_device >= 1")
    from filelock import FileLock, Timeout
    folder.mkdir(parents=True, exist_ok=True)
    waited = False
    while True:
        for device, slot in slots(count, per_device):
            lock = FileLock(folder / f"cuda-{device}.slot-{slot}.lock", timeout=0)
            try:
                lock.acquire()
            except Timeout:
                continue
            _HELD[f"cuda:{device}"] = lock
            return torch.device("cuda", device)
        if not waited:
            print(f"waiting for a free GPU slot: all {count} x {per_device} in {folder} are "
                  "taken", flush=True)
            waited = True
        time.sleep(wait_s)


def release() -> None:
    """Give this process's slot back (tests; a process's exit does it too)."""
    for lock in _HELD.values():
        lock.release()
    _HELD.clear()


def machine(device: torch.device) -> dict:
    """What computed a result, recorded next to it: floats differ in their low digits
    between CPU instruction sets (oneDNN picks other kernels), thread counts and GPUs, and
    a GAN amplifies that. Measured on one Intel Xeon (AVX-512, AMX): a training run repeats
    bit for bit at the same thread count; 1 thread differs from 2 or 3 (which agree);
    oneDNN limited to AVX2 (ONEDNN_MAX_CPU_ISA) differs from AVX-512. A model name alone
    ("AMD EPYC" in a VM) does not tell these machines apart: the instruction sets do."""
    return {"cpu": cpu_model(), "isa": cpu_isa(), "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
            "torch": torch.__version__, "python": platform.python_version()}


# The /proc/cpuinfo flags that decide which oneDNN / ATen kernels run (vector width, bf16
# and int8 dot products, AMX tiles); the first that a CPU lacks changes the arithmetic.
ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
             "amx_tile", "amx_bf16", "amx_int8")


def cpu_isa() -> str:
    """e.g. "AVX512 (avx2 fma avx512f avx512_bf16 amx_bf16)": ATen's CPU capability, the
    decisive flags the CPU has, and ONEDNN_MAX_CPU_ISA when it limits oneDNN."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        line = next((l for l in text.splitlines() if l.startswith(("flags", "Features"))), "")
        flags = set(line.partition(":")[2].split())
    except OSError:
        flags = set()
    present = " ".join(f for f in ISA_FLAGS if f in flags)
    limit = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    return (f"{torch.backends.cpu.get_cpu_capability()} ({present or 'flags unknown'})"
            + (f", oneDNN limited to {limit}" if limit else ""))


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """The card, or the CPU and its threads."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_model()} CPU, {torch.get_num_threads()} threads"
