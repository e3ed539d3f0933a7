import ctypes

import pytest

from mnemodyn_hf import native_kernels


@pytest.fixture
def fresh_status(monkeypatch, tmp_path):
    """kernel_status() re-evaluated under this test's environment, and forgotten afterwards."""
    monkeypatch.setenv(native_kernels.CACHE_VARIABLE, str(tmp_path))
    native_kernels.kernel_status.cache_clear()
    yield native_kernels.kernel_status
    native_kernels.kernel_status.cache_clear()


def test_the_kernel_is_built_once_into_the_cache_and_loaded(fresh_status, tmp_path):
    if native_kernels._compiler() is None:
        pytest.skip("no C compiler on this machine")
    status = fresh_status()
    assert status.available, status.reason
    (built,) = tmp_path.glob("field_contraction-*.so")
    assert status.reason == f"loaded {built}" and not list(tmp_path.glob("*.tmp"))
    assert isinstance(status.library.mnemodyn_tanh_field_forward, ctypes._CFuncPtr)
    modified = built.stat().st_mtime_ns
    fresh_status.cache_clear()
    assert fresh_status().available and built.stat().st_mtime_ns == modified  # loaded, not rebuilt


def test_the_environment_can_disable_it(fresh_status, monkeypatch):
    monkeypatch.setenv(native_kernels.DISABLE_VARIABLE, "0")
    status = fresh_status()
    assert not status.available and status.reason == "disabled by MNEMODYN_NATIVE_KERNELS=0"


def test_a_missing_or_failing_compiler_is_a_reason_not_an_error(fresh_status, monkeypatch, tmp_path):
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert fresh_status().reason == "no C compiler found (install gcc or clang, or point $CC at one)"
    failing = tmp_path / "failing-cc"
    failing.write_text(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo fake 1.0; exit 0; fi\necho 'cc: boom' >&2\nexit 1\n"
    )
    failing.chmod(0o755)
    monkeypatch.setenv("CC", str(failing))
    fresh_status.cache_clear()
    status = fresh_status()
    assert not status.available and status.reason.endswith("failed: cc: boom")
    assert not list(tmp_path.glob("*.so*"))  # no half-written library left behind


def test_a_copy_without_the_kernel_source_runs_eager(fresh_status, monkeypatch, tmp_path):
    """The modeling files copied into a Hub folder for trust_remote_code carry no kernels/ folder."""
    monkeypatch.setattr(native_kernels, "SOURCE", tmp_path / "kernels" / "field_contraction.c")
    status = fresh_status()
    assert not status.available and "field_contraction.c is missing" in status.reason
