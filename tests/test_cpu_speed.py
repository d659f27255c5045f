"""convae_utils.cpu_speed: the malloc switch and the CPU feature check."""

from __future__ import annotations

import sys

import pytest

from convae_utils import cpu_speed

REAL_GLIBC_CHECK = cpu_speed._glibc
SETTINGS = {"M_TRIM_THRESHOLD": 1 << 30, "M_TOP_PAD": 64 << 20}

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
flags\t\t: fpu vme sse sse2 avx avx2 fma avx512f avx512_bf16 amx_bf16 amx_tile
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu
"""
AVX2_CPUINFO = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd sve bf16 i8mm\n"


class FakeLibc:
    """Stands in for ctypes.CDLL('libc.so.6'): records mallopt calls, answers 1 (accepted) or 0."""

    def __init__(self, answer: int = 1):
        self.calls: list[tuple[int, int]] = []
        self.answer = answer

    def mallopt(self, param, value):
        self.calls.append((param.value, value.value))
        return self.answer


@pytest.fixture
def fresh(monkeypatch):
    """A process state in which tune_allocator has not run yet, on glibc, with no preload or opt-out."""
    monkeypatch.setattr(cpu_speed, "_applied", None)
    monkeypatch.setattr(cpu_speed, "_glibc", lambda: True)
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv(cpu_speed.ENV_SWITCH, raising=False)
    libc = FakeLibc()
    monkeypatch.setattr(cpu_speed.ctypes, "CDLL", lambda name: libc)
    return libc


def test_applies_once_and_repeats_the_report(fresh):
    first = cpu_speed.tune_allocator(SETTINGS)
    assert first["applied"] and first["allocator"] == "glibc" and first["settings"] == SETTINGS
    assert len(fresh.calls) == len(SETTINGS)
    second = cpu_speed.tune_allocator({"M_ARENA_MAX": 1})  # settings are process-wide: no second mallopt
    assert len(fresh.calls) == len(SETTINGS)
    assert second["repeated"] and second["settings"] == first["settings"]


def test_default_applies_the_measured_setting(fresh):
    report = cpu_speed.tune_allocator()
    assert report["applied"] and report["settings"] == cpu_speed.ALLOCATOR_SETTINGS
    assert len(fresh.calls) == len(cpu_speed.ALLOCATOR_SETTINGS)


def test_passes_glibc_parameter_numbers(fresh):
    cpu_speed.tune_allocator({"M_MMAP_THRESHOLD": 32 << 20, "M_ARENA_MAX": 2})
    assert fresh.calls == [(-3, 32 << 20), (-8, 2)]  # <malloc.h>: M_MMAP_THRESHOLD -3, M_ARENA_MAX -8


def test_no_op_without_glibc(fresh, monkeypatch):
    monkeypatch.setattr(cpu_speed, "_glibc", REAL_GLIBC_CHECK)
    monkeypatch.setattr(cpu_speed.platform, "libc_ver", lambda: ("", ""))  # macOS, Windows, musl ...
    report = cpu_speed.tune_allocator(SETTINGS)
    assert not report["applied"] and report["allocator"] == "other"
    assert "glibc" in report["reason"] and fresh.calls == []


def test_real_glibc_detection_follows_libc_ver(monkeypatch):
    monkeypatch.setattr(cpu_speed.platform, "libc_ver", lambda: ("musl", "1.2"))
    assert not cpu_speed._glibc()
    monkeypatch.setattr(cpu_speed.platform, "libc_ver", lambda: ("glibc", "2.36"))
    assert cpu_speed._glibc() == sys.platform.startswith("linux")


@pytest.mark.parametrize("preload", ["/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                                     "libfoo.so:/usr/lib/libtcmalloc_minimal.so.4"])
def test_no_op_under_a_preloaded_allocator(fresh, monkeypatch, preload):
    monkeypatch.setenv("LD_PRELOAD", preload)
    report = cpu_speed.tune_allocator(SETTINGS)
    assert not report["applied"] and report["allocator"] in ("jemalloc", "tcmalloc")
    assert fresh.calls == []


def test_env_switch_turns_it_off(fresh, monkeypatch):
    monkeypatch.setenv(cpu_speed.ENV_SWITCH, "0")
    assert not cpu_speed.tune_allocator(SETTINGS)["applied"] and fresh.calls == []


def test_nothing_measured_means_nothing_applied(fresh, monkeypatch):
    monkeypatch.setattr(cpu_speed, "ALLOCATOR_SETTINGS", None)
    report = cpu_speed.tune_allocator()
    assert not report["applied"] and fresh.calls == []


def test_refused_setting_is_reported(fresh):
    fresh.answer = 0
    report = cpu_speed.tune_allocator(SETTINGS)
    assert not report["applied"] and "refused" in report["reason"]


@pytest.mark.parametrize("bad", [{"M_NOPE": 1}, {"M_TOP_PAD": -1}, {"M_TOP_PAD": 1.5}, {"M_TOP_PAD": True}])
def test_bad_settings_raise(fresh, bad):
    with pytest.raises(ValueError, match="mallopt"):
        cpu_speed.tune_allocator(bad)
    assert cpu_speed._applied is None  # a bad call leaves the process untouched and callable again


@pytest.mark.skipif(not cpu_speed._glibc(), reason="needs Linux with glibc")
def test_real_mallopt_accepts_the_parameters(monkeypatch):
    monkeypatch.setattr(cpu_speed, "_applied", None)
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    monkeypatch.delenv(cpu_speed.ENV_SWITCH, raising=False)
    # glibc's own defaults: harmless to set in the test process, and glibc must accept each one.
    report = cpu_speed.tune_allocator({"M_TRIM_THRESHOLD": 128 << 10, "M_TOP_PAD": 128 << 10})
    assert report["applied"], report


def test_features_from_x86_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(X86_CPUINFO)
    features = cpu_speed.cpu_features(path, capability="AVX512")
    assert {"avx2", "avx512_bf16", "amx_bf16", "torch:avx512"} <= features
    assert "spectre_v1" not in features  # only the flags line, of the first processor
    assert cpu_speed.native_bf16(features)


def test_avx2_only_is_not_native_bf16(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(AVX2_CPUINFO)
    features = cpu_speed.cpu_features(path, capability="AVX2")
    assert "avx2" in features and not cpu_speed.native_bf16(features)


def test_features_from_arm_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(ARM_CPUINFO)
    features = cpu_speed.cpu_features(path, capability="DEFAULT")
    assert {"asimd", "bf16", "torch:default"} <= features and cpu_speed.native_bf16(features)


def test_missing_cpuinfo_gives_only_torch_level(tmp_path):
    features = cpu_speed.cpu_features(tmp_path / "absent", capability="AVX2")
    assert features == {"torch:avx2"} and not cpu_speed.native_bf16(features)


def test_default_reads_this_machine():
    features = cpu_speed.cpu_features()
    assert any(f.startswith("torch:") for f in features)
    assert isinstance(cpu_speed.native_bf16(), bool)


@pytest.mark.skipif(not cpu_speed._glibc(), reason="needs Linux with glibc")
def test_real_glibc_accepts_the_measured_setting():
    """In a fresh process (malloc settings are process-wide): glibc takes every value, e.g. the 32 MiB cap."""
    import json
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", cpu_speed.ENV_SWITCH)}
    code = "import json; from convae_utils.cpu_speed import tune_allocator; print(json.dumps(tune_allocator()))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["applied"] and report["settings"] == cpu_speed.ALLOCATOR_SETTINGS, report


# -- where the switches are used ----------------------------------------------------------------------

def _tiny_fit(**options):
    from convae_utils import training
    from convae_utils.models import build_autoencoder
    from convae_utils.shapes import make_shapes10

    from convae_utils.speed import Speed

    images = make_shapes10(8, seed=0)
    return training.fit(build_autoencoder(8, seed=0), images, images, num_epochs=1, batch_size=4,
                        progress=False, device="cpu", speed=Speed(**options))


def test_fit_tunes_the_allocator(monkeypatch):
    from convae_utils import speed

    calls = []
    monkeypatch.setattr(speed, "tune_allocator", lambda: calls.append(1) or {})
    _tiny_fit()
    assert calls == [1]


def test_fit_warns_about_emulated_bf16_on_a_cpu(monkeypatch):
    from convae_utils import speed

    monkeypatch.setattr(speed, "native_bf16", lambda: False)
    with pytest.warns(UserWarning, match="native bfloat16"):
        _tiny_fit(amp=True)


def test_series_kernels_tune_the_allocator_at_start(fresh):
    """The kernel's start-up line is valid Python that applies the switch (run here, on a fake libc)."""
    import ast

    from convae_utils import series

    option, _, value = series.KERNEL_STARTUP.partition("=")
    assert option == "--IPKernelApp.exec_lines"
    [line] = ast.literal_eval(value)
    namespace: dict = {}
    exec(line, namespace)  # noqa: S102 - our own constant
    assert fresh.calls and cpu_speed._applied["applied"] and "_tune" not in namespace
