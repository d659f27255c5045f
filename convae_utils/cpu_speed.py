"""CPU speed switches: the process's malloc settings and a check of the CPU's bfloat16 support.

Introduced for issue 14 (the CPU training path); used by the training commands and the benchmark.

- :func:`tune_allocator` applies glibc malloc settings in the running process through ``mallopt``
  (so it works in a notebook kernel a learner started by hand, unlike ``LD_PRELOAD`` or
  ``GLIBC_TUNABLES``, which need a fresh process). It does something only where it was measured to
  help: see ``ALLOCATOR_SETTINGS`` and ``benchmarks/allocators.py``.
- :func:`cpu_features` and :func:`native_bf16` say whether this CPU computes bfloat16 natively
  (x86: ``avx512_bf16`` or ``amx_bf16``; Arm: ``bf16``). Without it, bfloat16 autocast on a CPU is
  emulated in float32 and is slower than plain float32 (measured: ``benchmarks/cpu_modes.py``).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

import torch

from .settings import TUNE_MALLOC_ENV, allocator_environment

MIB = 1 << 20
# glibc's <malloc.h> parameter numbers (stable ABI since glibc 2.0 / 2.10 for M_ARENA_MAX).
_M_PARAMS = {"M_TRIM_THRESHOLD": -1, "M_TOP_PAD": -2, "M_MMAP_THRESHOLD": -3, "M_ARENA_MAX": -8}
# The setting measured by benchmarks/allocators.py (2-core AVX2 VM, glibc 2.36, latent 200, batch 64,
# 1 thread): page faults per training step ~3,800 -> ~30, system time per step ~13 ms -> 0.2 ms,
# losses and weights bit-identical; the same when applied after torch was imported (a notebook kernel).
# The mmap threshold is the part that matters: raising only the trim threshold turns glibc's dynamic
# threshold off at 128 KiB and made it worse (~17,000 faults per step). Cost: freed memory up to
# 1 GiB stays in the process for reuse instead of going back to the kernel.
ALLOCATOR_SETTINGS: dict[str, int] | None = {
    "M_MMAP_THRESHOLD": 32 * MIB,   # the most glibc accepts on 64-bit: activations come from the heap
    "M_TRIM_THRESHOLD": 1024 * MIB,  # keep freed heap memory for the next step
    "M_TOP_PAD": 64 * MIB,           # grow the heap in big steps
    "M_ARENA_MAX": 2,                # one arena per core on the 2-core target
}
ENV_SWITCH = TUNE_MALLOC_ENV  # set it to 0 to keep glibc's defaults (read by convae_utils.settings)

_applied: dict | None = None

# The bfloat16 instructions that make CPU autocast fast, per /proc/cpuinfo flag name.
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})  # x86 AVX-512 BF16, x86 AMX, Arm BF16


def _glibc() -> bool:
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def _preloaded_allocator() -> str | None:
    for lib in allocator_environment()["ld_preload"].replace(":", " ").split():
        name = Path(lib).name
        for known in ("jemalloc", "tcmalloc", "mimalloc"):
            if known in name:
                return known
    return None


def tune_allocator(settings: dict[str, int] | None = None) -> dict:
    """Apply malloc settings to this process once; return a report of what was done.

    Args:
        settings: ``{"M_TRIM_THRESHOLD": bytes, ...}`` (keys from glibc's ``mallopt`` names
            M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX); default
            ``ALLOCATOR_SETTINGS``, the measured winner (None: leave glibc's defaults).

    Returns:
        ``{"applied": bool, "allocator": "glibc" | "jemalloc" | ... | "other", "settings": {...},
        "reason": str}``. Calling it again returns the first call's report without touching malloc:
        the settings are process-wide and a second ``mallopt`` would change nothing.

    A no-op (``applied`` False) off Linux/glibc, under a preloaded jemalloc/tcmalloc, when
    ``$CONVAE_TUNE_MALLOC`` is ``0``, or when there is nothing measured to apply.

    Raises:
        ValueError: for an unknown parameter name or a negative/non-integer value.
    """
    global _applied
    if _applied is not None:
        return dict(_applied, repeated=True)
    chosen = ALLOCATOR_SETTINGS if settings is None else settings
    if chosen is not None:
        for key, value in chosen.items():
            if key not in _M_PARAMS:
                raise ValueError(f"unknown mallopt parameter {key!r}; expected one of {sorted(_M_PARAMS)}")
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2 ** 31:
                raise ValueError(f"mallopt {key} must be an int in 0..2**31-1, got {value!r}")
    preloaded = _preloaded_allocator()
    report = {"applied": False, "allocator": preloaded or ("glibc" if _glibc() else "other"),
              "settings": {}, "reason": ""}
    if preloaded:
        report["reason"] = f"{preloaded} is preloaded (LD_PRELOAD); glibc's mallopt does not apply"
    elif not _glibc():
        report["reason"] = f"not Linux with glibc ({sys.platform}, {platform.libc_ver()[0] or 'unknown libc'})"
    elif not allocator_environment()["tune"]:
        report["reason"] = f"${ENV_SWITCH}=0"
    elif not chosen:
        report["reason"] = "no malloc setting was measured to help; glibc defaults kept"
    else:
        libc = ctypes.CDLL("libc.so.6")
        done = {}
        for key, value in chosen.items():
            if libc.mallopt(ctypes.c_int(_M_PARAMS[key]), ctypes.c_int(value)) != 1:
                report["reason"] = f"glibc refused mallopt({key}, {value})"
                break
            done[key] = value
        report["settings"] = done
        report["applied"] = bool(done) and not report["reason"]
        report["reason"] = report["reason"] or "mallopt applied"
    _applied = report
    return dict(report)


def cpu_features(cpuinfo: str | os.PathLike | None = "/proc/cpuinfo", capability: str | None = None) -> set[str]:
    """Instruction-set features of this CPU, lower case: ``{"avx2", "fma", ..., "torch:avx2"}``.

    The CPU's flags come from the first ``flags`` (x86) or ``Features`` (Arm) line of ``cpuinfo``
    (a path; missing or unreadable gives no flags, as on macOS or Windows). ``torch:<level>`` is
    the vector level PyTorch's own kernels use (``torch.backends.cpu.get_cpu_capability()``, e.g.
    AVX2, AVX512, DEFAULT); pass ``capability`` to override it (tests).
    """
    features: set[str] = set()
    if cpuinfo is not None:
        try:
            text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
        except OSError:
            text = ""
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip().lower() in ("flags", "features"):
                features.update(flag.lower() for flag in value.split())
                break
    if capability is None:
        capability = torch.backends.cpu.get_cpu_capability()
    features.add(f"torch:{capability.lower()}")
    return features


def native_bf16(features: set[str] | None = None) -> bool:
    """True when the CPU has bfloat16 arithmetic (AVX-512 BF16, AMX or Arm BF16).

    Only then can CPU bfloat16 autocast beat float32; elsewhere oneDNN emulates bf16 and is slower.
    ``features`` defaults to :func:`cpu_features`.
    """
    return bool((cpu_features() if features is None else features) & BF16_FLAGS)
