"""The C kernels (the fused tanh vector-field contraction, and the region convolution's products for few rows):
built once per user and machine with the system C compiler into one library, loaded with ctypes.

`kernels/field_contraction.c` computes the contraction of `field_contraction.py` without writing the (frames, R, C)
expansion to memory: the expansion, its tanh (a rational approximation, absolute error < 4e-7) and the contraction
with the path derivative happen in vector registers (explicit SIMD as wide as the `-march` target allows), forward
and backward. Which of it and the eager path runs under `field_implementation="auto"` is timed per machine
(`field_contraction.py`), and kept with `store_choice` beside the library. `kernels/region_products.c` computes a region
convolution's three products with 64 or fewer rows per region (the wavelet levels of one sequence), reading the
weight-sized matrix where it lies, where a GEMM library's blocking moves it far below the memory bandwidth or first
copies it; `region_products.py` times each against torch per shape the same way.
`kernels/wavelet_transforms.c` runs one level of the periodized DWT and inverse DWT and their adjoints for
`wavelets.py` (float32 on CPU), one contiguous multiply-add per filter tap over each deinterleaved row instead of a
dozen strided tensor operations per level.

The shared library is compiled on first use (`cc -O3 -march=native -fopenmp`, about a second; `$MNEMODYN_KERNEL_MARCH`
names another `-march` target, e.g. `x86-64-v3` for an AVX2 build on an AVX-512 machine) into
`$MNEMODYN_KERNEL_CACHE` (default `~/.cache/mnemodyn_hf/kernels`, or under `$XDG_CACHE_HOME`), named by a hash of the
source, the flags, the compiler and this CPU's instruction sets. The library runs as code, so the cache is private:
directories the loader creates get mode 0700, and it refuses a cache directory or library that another user owns or
that others may write, and a symlinked library. A build holds an exclusive `flock` on a lock file in the cache and
compiles into a temporary file that is renamed into place with mode 0700, so processes started together (DDP ranks)
compile once. When the cache is refused, without a C compiler or with `MNEMODYN_NATIVE_KERNELS=0`, the model runs
the eager path: `kernel_status()` says why, and logs it at INFO level.

`torch.utils.cpp_extension.load` would serve worse: it compiles `.c` sources as C++ (`c++ -std=c++20`, which rejects
this kernel's implicit `void *` conversions), links libtorch and raises without ninja. Its cache
(`~/.cache/torch_extensions` or `$TORCH_EXTENSIONS_DIR`) is made by `os.makedirs` and loaded with no ownership or mode
check, and its `FileBaton` lock is an `O_CREAT | O_EXCL` file deleted by its holder, so a process killed mid-build
leaves it behind and every later `load` waits for it forever. The kernel is plain C behind a ctypes ABI, so the
loader keeps its one-command build and adds the checks and the `flock`.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import hashlib
import json
import logging
import os
import platform
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

KERNELS = Path(__file__).parent / "kernels"
SOURCES = (KERNELS / "field_contraction.c", KERNELS / "region_products.c", KERNELS / "wavelet_transforms.c")
HEADERS = (KERNELS / "vector.h",)  # included by the sources (from their own directory); part of the cache key
DISABLE_VARIABLE = "MNEMODYN_NATIVE_KERNELS"
CACHE_VARIABLE = "MNEMODYN_KERNEL_CACHE"
MARCH_VARIABLE = "MNEMODYN_KERNEL_MARCH"
_PRIVATE_FIX = f"point {CACHE_VARIABLE} at a private directory (chmod 700)"
_DELETE_FIX = "delete it (the kernel is rebuilt on next use)"


def compile_flags() -> tuple[str, ...]:
    """The compiler flags of the kernel: `-march` from `$MNEMODYN_KERNEL_MARCH` (default `native`)."""
    march = os.environ.get(MARCH_VARIABLE, "").strip() or "native"
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+", march):
        raise ValueError(f"{MARCH_VARIABLE}={march!r} is not a -march target name")
    return ("-O3", f"-march={march}", "-fPIC", "-shared", "-fopenmp")


@dataclass(frozen=True)
class KernelStatus:
    """Whether the fused kernel is loaded (from `path`), and if not, why (a sentence naming the fix)."""

    library: ctypes.CDLL | None
    reason: str
    path: Path | None = None

    @property
    def available(self) -> bool:
        return self.library is not None


def _cache_directory() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache") / "mnemodyn_hf" / "kernels"


def _create_private(directory: Path) -> None:
    """Create the missing directories down to `directory`, each mode 0700 (set after `mkdir`, which the umask
    trims); directories that already exist, or that another process creates meanwhile, are left as they are."""
    missing = []
    for path in (directory, *directory.parents):
        if os.path.lexists(path):
            break
        missing.append(path)
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(path, 0o700)


def _refusal(path: Path | str, info: os.stat_result, what: str, fix: str) -> str | None:
    """Why `path` (stat `info`) must not be trusted with code run in this process, or None if it may."""
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISLNK(info.st_mode):
        return f"{what} {path} is a symbolic link; {fix}"
    if info.st_uid != os.getuid():
        return f"{what} {path} is owned by uid {info.st_uid}, not by this user (uid {os.getuid()}); {fix}"
    if mode & 0o022:
        return f"{what} {path} is writable by other users (mode {mode:04o}); {fix}"
    return None


def _directory_refusal(directory: Path) -> str | None:
    info = os.stat(directory)
    if not stat.S_ISDIR(info.st_mode):
        return f"the kernel cache {directory} is not a directory; {_PRIVATE_FIX}"
    return _refusal(directory, info, "the kernel cache", _PRIVATE_FIX)


def _cpu_signature() -> str:
    """The CPU's instruction sets (Linux: the `flags` line of /proc/cpuinfo), since the binary is built for them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compiler() -> str | None:
    configured = os.environ.get("CC")
    return shutil.which(configured) if configured else (shutil.which("cc") or shutil.which("gcc"))


def _library_name(compiler: str) -> str:
    """`mnemodyn_kernels-<key>.so`, the key hashing the sources and headers, the flags, the compiler's version and the
    CPU."""
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
    texts = [path.read_text() for path in (*SOURCES, *HEADERS)]
    parts = [*texts, " ".join(compile_flags()), version, _cpu_signature()]
    return f"mnemodyn_kernels-{hashlib.sha256(chr(10).join(parts).encode()).hexdigest()[:16]}.so"


class _Refused(Exception):
    """A file of the cache that must not be trusted; the message is the reason."""


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive `flock` on `path` (a file of ours, created mode 0600 and kept) while the block runs."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        refusal = _refusal(path, os.fstat(descriptor), "the kernel lock file", _DELETE_FIX)
        if refusal:
            raise _Refused(refusal)
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _build(compiler: str, target: Path) -> None:
    """Compile into a temporary file of the cache directory, make it 0700, then rename: nobody sees half a file."""
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".so.tmp")
    os.close(handle)
    try:
        subprocess.run(
            [compiler, *compile_flags(), *map(str, SOURCES), "-o", temporary],
            check=True,
            capture_output=True,
            text=True,
        )
        os.chmod(temporary, 0o700)
        os.replace(temporary, target)
        logger.info("mnemodyn_hf: built %s", target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _built(compiler: str, target: Path) -> None:
    """Build `target` unless it exists, under the lock; whoever waited finds it built and compiles nothing."""
    if os.path.lexists(target):
        return
    with _exclusive_lock(target.with_suffix(".lock")):
        if not os.path.lexists(target):
            _build(compiler, target)


def _declare(library: ctypes.CDLL) -> ctypes.CDLL:
    pointer, size = ctypes.c_void_p, ctypes.c_long
    library.mnemodyn_tanh_field_forward.argtypes = [pointer] * 5 + [size] * 4 + [ctypes.c_int]
    library.mnemodyn_tanh_field_backward.argtypes = [pointer] * 8 + [size] * 4 + [ctypes.c_int]
    library.mnemodyn_region_forward.argtypes = [pointer] * 4 + [size] * 4 + [ctypes.c_int]
    library.mnemodyn_region_input_gradient.argtypes = [pointer] * 3 + [size] * 4 + [ctypes.c_int]
    library.mnemodyn_region_weight_gradient.argtypes = [pointer] * 3 + [size] * 4 + [ctypes.c_int]
    library.mnemodyn_dwt.argtypes = [pointer] * 4 + [size] * 3 + [ctypes.c_int]
    library.mnemodyn_dwt_adjoint.argtypes = [pointer] * 4 + [size] * 3 + [ctypes.c_int]
    library.mnemodyn_idwt.argtypes = [pointer] * 4 + [size] * 3 + [ctypes.c_int]
    library.mnemodyn_idwt_adjoint.argtypes = [pointer] * 4 + [size] * 3 + [ctypes.c_int]
    for entry in (
        "mnemodyn_tanh_field_forward",
        "mnemodyn_tanh_field_backward",
        "mnemodyn_region_forward",
        "mnemodyn_region_input_gradient",
        "mnemodyn_region_weight_gradient",
        "mnemodyn_dwt",
        "mnemodyn_dwt_adjoint",
        "mnemodyn_idwt",
        "mnemodyn_idwt_adjoint",
    ):
        getattr(library, entry).restype = ctypes.c_int
    return library


def _unavailable(reason: str) -> KernelStatus:
    logger.info("mnemodyn_hf: the native kernels are unavailable, using the eager paths: %s", reason)
    return KernelStatus(None, reason)


def _status(compiler: str) -> KernelStatus:
    directory = _cache_directory()
    try:
        _create_private(directory)
        refusal = _directory_refusal(directory)
    except OSError as error:
        return _unavailable(f"the kernel cache {directory} cannot be created ({error}); {_PRIVATE_FIX}")
    if refusal:
        return _unavailable(refusal)
    try:
        target = directory / _library_name(compiler)
        _built(compiler, target)
        refusal = _refusal(target, os.lstat(target), "the cached kernel", _DELETE_FIX)
    except _Refused as error:
        return _unavailable(str(error))
    except (OSError, subprocess.CalledProcessError) as error:
        detail = (getattr(error, "stderr", None) or str(error)).strip()
        return _unavailable(f"building with {compiler} failed: {detail[:500]}")
    if refusal:
        return _unavailable(refusal)
    try:
        return KernelStatus(_declare(ctypes.CDLL(str(target))), f"loaded {target}", target)
    except OSError as error:
        return _unavailable(f"loading {target} failed ({error}); {_DELETE_FIX}")


@functools.lru_cache(maxsize=1)
def kernel_status() -> KernelStatus:
    """Build (once per user and machine) and load the fused kernel; never raises."""
    if os.environ.get(DISABLE_VARIABLE, "1").strip().lower() in {"0", "false", "no", "off"}:
        return _unavailable(f"disabled by {DISABLE_VARIABLE}={os.environ[DISABLE_VARIABLE]}")
    missing = [path for path in (*SOURCES, *HEADERS) if not path.is_file()]
    if missing:  # e.g. the modeling code copied into a Hub folder (trust_remote_code) without kernels/
        return _unavailable(f"the kernel source {missing[0]} is missing (install mnemodyn_hf to get it)")
    compiler = _compiler()
    if compiler is None:
        return _unavailable("no C compiler found (install gcc or clang, or point $CC at one)")
    try:
        compile_flags()
    except ValueError as error:
        return _unavailable(str(error))
    return _status(compiler)


def _choices_path(library: Path) -> Path:
    return library.with_name(f"{library.stem}.choices.json")


def _read_choices(path: Path) -> dict:
    """The stored choices, or {} when the file is missing, unreadable or refused (another owner, writable by
    others, a symbolic link)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return {}
    with os.fdopen(descriptor) as stream:
        refusal = _refusal(path, os.fstat(descriptor), "the kernel choice file", _DELETE_FIX)
        if refusal:
            logger.info("mnemodyn_hf: ignoring %s", refusal)
            return {}
        try:
            choices = json.load(stream)
        except ValueError:
            return {}
    return choices if isinstance(choices, dict) else {}


def stored_choice(key: str) -> dict | None:
    """What `store_choice` kept under `key` for the loaded library (this machine, compiler and flags), if anything."""
    status = kernel_status()
    if status.path is None:
        return None
    value = _read_choices(_choices_path(status.path)).get(key)
    return value if isinstance(value, dict) else None


def store_choice(key: str, value: dict) -> None:
    """Keep `value` under `key` in a JSON file beside the loaded library: read, updated and renamed into place under
    the build lock, mode 0600. A cache that cannot be written is logged, never raised: the caller keeps its value."""
    status = kernel_status()
    if status.path is None:
        return
    path = _choices_path(status.path)
    try:
        with _exclusive_lock(status.path.with_suffix(".lock")):
            choices = _read_choices(path)
            choices[key] = value
            handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".json.tmp")
            try:
                with os.fdopen(handle, "w") as stream:
                    json.dump(choices, stream, indent=1, sort_keys=True)
                os.replace(temporary, path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
    except (OSError, _Refused) as error:
        logger.info("mnemodyn_hf: the kernel choice was not stored in %s: %s", path, error)


__all__ = ["KernelStatus", "compile_flags", "kernel_status", "store_choice", "stored_choice"]
