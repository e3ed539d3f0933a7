import ctypes
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

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
    (built,) = tmp_path.glob("mnemodyn_kernels-*.so")
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
    monkeypatch.setattr(native_kernels, "SOURCES", (tmp_path / "kernels" / "field_contraction.c",))
    status = fresh_status()
    assert not status.available and "field_contraction.c is missing" in status.reason


needs_compiler = pytest.mark.skipif(native_kernels._compiler() is None, reason="no C compiler on this machine")
needs_root = pytest.mark.skipif(os.getuid() != 0, reason="giving a directory to another user (chown) needs root")


@pytest.fixture(scope="module")
def built_kernel(tmp_path_factory) -> Path:
    """A kernel built by the loader into a private cache, to copy where a test needs one."""
    if native_kernels._compiler() is None:
        pytest.skip("no C compiler on this machine")
    cache = tmp_path_factory.mktemp("private-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(native_kernels.CACHE_VARIABLE, str(cache))
        native_kernels.kernel_status.cache_clear()
        status = native_kernels.kernel_status()
        native_kernels.kernel_status.cache_clear()
    assert status.available, status.reason
    (built,) = cache.glob("mnemodyn_kernels-*.so")
    return built


def _shared_directory(path: Path, owner: int | None = None) -> Path:
    """A world-writable directory (as /tmp without the sticky bit), optionally given to another user."""
    path.mkdir()
    path.chmod(0o777)
    if owner is not None:
        os.chown(path, owner, owner)
    return path


def _mapped(fragment: str) -> list[str]:
    return [line for line in Path("/proc/self/maps").read_text().splitlines() if fragment in line]


@needs_compiler
@pytest.mark.parametrize("variable", ["HOME", "XDG_CACHE_HOME"])
def test_the_default_cache_is_a_private_directory(fresh_status, monkeypatch, tmp_path, variable):
    monkeypatch.delenv(native_kernels.CACHE_VARIABLE)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv(variable, str(tmp_path / "base"))
    cache = tmp_path / "base" / (".cache" if variable == "HOME" else "") / "mnemodyn_hf" / "kernels"
    status = fresh_status()
    assert status.available and status.reason.startswith(f"loaded {cache}/"), status.reason
    assert stat.S_IMODE(cache.stat().st_mode) == stat.S_IMODE(cache.parent.stat().st_mode) == 0o700


def test_created_directories_are_private_whatever_the_umask_and_existing_ones_untouched(tmp_path):
    (tmp_path / "existing").mkdir(mode=0o755)
    previous = os.umask(0o277)  # mkdir(mode=0o700) alone would give 0o500
    try:
        native_kernels._create_private(tmp_path / "existing" / "made" / "kernels")
    finally:
        os.umask(previous)
    paths = [tmp_path / "existing", tmp_path / "existing" / "made", tmp_path / "existing" / "made" / "kernels"]
    assert [stat.S_IMODE(path.stat().st_mode) for path in paths] == [0o755, 0o700, 0o700]


def test_the_built_library_is_private_to_its_owner(built_kernel):
    info = built_kernel.stat()
    assert stat.S_IMODE(info.st_mode) == 0o700 and info.st_uid == os.getuid()


def test_a_world_writable_cache_is_refused_and_its_library_never_loaded(
    fresh_status, monkeypatch, tmp_path, built_kernel
):
    shared = _shared_directory(tmp_path / "shared")
    planted = shared / built_kernel.name  # the name the loader would look for
    shutil.copy(built_kernel, planted)
    monkeypatch.setenv(native_kernels.CACHE_VARIABLE, str(shared))
    status = fresh_status()
    assert not _mapped(str(planted)) and sorted(path.name for path in shared.iterdir()) == [planted.name]
    assert not status.available
    assert status.reason == (
        f"the kernel cache {shared} is writable by other users (mode 0777); "
        "point MNEMODYN_KERNEL_CACHE at a private directory (chmod 700)"
    )


@needs_compiler
@needs_root
def test_a_cache_owned_by_another_user_is_refused(fresh_status, monkeypatch, tmp_path):
    other = tmp_path / "other"
    other.mkdir(mode=0o755)
    os.chown(other, 65534, 65534)
    monkeypatch.setenv(native_kernels.CACHE_VARIABLE, str(other))
    status = fresh_status()
    assert not status.available and f"{other} is owned by uid 65534, not by this user (uid 0)" in status.reason


@needs_compiler
def test_a_cache_that_is_a_file_is_refused(fresh_status, monkeypatch, tmp_path):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(native_kernels.CACHE_VARIABLE, str(tmp_path / "file"))
    assert fresh_status().reason.startswith(f"the kernel cache {tmp_path / 'file'} is not a directory;")


def test_a_group_writable_library_is_refused(fresh_status, tmp_path, built_kernel):
    library = tmp_path / built_kernel.name
    shutil.copy(built_kernel, library)
    library.chmod(0o770)
    status = fresh_status()
    assert not status.available and not _mapped(str(library))
    assert status.reason.startswith(f"the cached kernel {library} is writable by other users (mode 0770); delete it")


def test_a_symlinked_library_is_refused(fresh_status, tmp_path, built_kernel):
    (tmp_path / built_kernel.name).symlink_to(built_kernel)
    status = fresh_status()
    assert not status.available
    assert status.reason.startswith(f"the cached kernel {tmp_path / built_kernel.name} is a symbolic link; delete it")


_RANK = """
import importlib.util, os, pathlib, sys, time
spec = importlib.util.spec_from_file_location("native_kernels", sys.argv[3])  # by path: no torch import, fast
native_kernels = importlib.util.module_from_spec(spec)
sys.modules["native_kernels"] = native_kernels  # for its dataclass
spec.loader.exec_module(native_kernels)
ready = pathlib.Path(sys.argv[1])
(ready / str(os.getpid())).touch()
while len(list(ready.iterdir())) < int(sys.argv[2]):  # start together, as DDP ranks do
    time.sleep(0.01)
status = native_kernels.kernel_status()
assert status.available, status.reason
"""


@needs_compiler
def test_processes_started_together_compile_once(tmp_path):
    """Each process waits for all to be imported, then loads; the wrapped compiler takes a second per build, so
    without the lock every process would compile."""
    calls = tmp_path / "calls"
    wrapper = tmp_path / "counting-cc"
    wrapper.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n[ "$1" = --version ] || sleep 1\nexec {native_kernels._compiler()} "$@"\n'
    )
    wrapper.chmod(0o755)
    (tmp_path / "ready").mkdir()
    environment = dict(os.environ, CC=str(wrapper), **{native_kernels.CACHE_VARIABLE: str(tmp_path / "cache")})
    processes = 4
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", _RANK, str(tmp_path / "ready"), str(processes), native_kernels.__file__],
            env=environment,
        )
        for _ in range(processes)
    ]
    assert [rank.wait(timeout=120) for rank in ranks] == [0] * processes
    compiles = [line for line in calls.read_text().splitlines() if line != "--version"]
    assert len(compiles) == 1, compiles
    assert len(list((tmp_path / "cache").glob("mnemodyn_kernels-*.so"))) == 1


_FORWARD = """
import sys, torch
from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
from mnemodyn_hf.native_kernels import kernel_status
config = MnemoDynConfig(num_rois=12, num_layers=2, projection_size=8, bottleneck_size=3, latent_channels=6,
                        wavelet_levels=3, num_regions=4, operator_kernel_size=5, num_coarse_layers=2, context_length=64)
with torch.no_grad():
    assert torch.isfinite(MnemoDynModel(config).eval()(torch.randn(1, 64, 12)).last_hidden_state).all()
print(kernel_status().reason)
print(sum(sys.argv[1] in line for line in open("/proc/self/maps")))
"""


@needs_compiler
def test_a_model_run_maps_nothing_from_a_planted_cache(tmp_path, built_kernel):
    """A fresh process runs the model with the cache pointed at a world-writable directory (of another user, as
    root) holding a library under the expected name: the forward pass runs eager and maps nothing from there."""
    shared = _shared_directory(tmp_path / "shared", owner=65534 if os.getuid() == 0 else None)
    shutil.copy(built_kernel, shared / built_kernel.name)
    environment = dict(os.environ, **{native_kernels.CACHE_VARIABLE: str(shared)})
    result = subprocess.run(
        [sys.executable, "-c", _FORWARD, str(shared)], env=environment, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    reason, mapped = result.stdout.splitlines()[-2:]
    problem = "is owned by uid 65534" if os.getuid() == 0 else "is writable by other users"
    assert mapped == "0", f"{mapped} mappings from {shared}"
    assert reason.startswith(f"the kernel cache {shared} {problem}")


def test_verbose_commands_show_why_the_kernel_fell_back_and_quiet_ones_do_not(fresh_status, tmp_path, capfd):
    from mnemodyn_hf.cli.verbosity import quiet_libraries

    os.chmod(tmp_path, 0o777)
    with quiet_libraries(enabled=True):
        assert not fresh_status().available
    assert capfd.readouterr().err == ""
    fresh_status.cache_clear()
    with quiet_libraries(enabled=False):  # mnemodyn -v
        reason = fresh_status().reason
    err = capfd.readouterr().err
    assert "writable by other users" in reason and reason in err and len(err.strip().splitlines()) == 1


def test_stored_choices_are_private_and_a_file_others_could_write_is_ignored(monkeypatch, tmp_path):
    library = tmp_path / "field_contraction-0.so"
    monkeypatch.setattr(native_kernels, "kernel_status", lambda: native_kernels.KernelStatus(None, "test", library))
    native_kernels.store_choice("shape", {"inference": "eager"})
    native_kernels.store_choice("other", {"inference": "native"})
    choices = tmp_path / "field_contraction-0.choices.json"
    assert stat.S_IMODE(choices.stat().st_mode) == 0o600 and not list(tmp_path.glob("*.tmp"))
    assert native_kernels.stored_choice("shape") == {"inference": "eager"}
    assert native_kernels.stored_choice("other") == {"inference": "native"}
    choices.chmod(0o666)
    assert native_kernels.stored_choice("shape") is None
    choices.rename(tmp_path / "elsewhere.json")
    choices.symlink_to(tmp_path / "elsewhere.json")
    assert native_kernels.stored_choice("shape") is None
