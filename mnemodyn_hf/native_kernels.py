"""The fused C kernel of the tanh vector-field contraction: built once per machine with the system C compiler, loaded
with ctypes.

`kernels/field_contraction.c` computes the contraction of `field_contraction.py` without writing the (frames, R, C)
expansion to memory: the expansion, its tanh (a rational approximation, absolute error < 4e-7) and the contraction
with the path derivative happen in registers, forward and backward. At the released size it is 2.2x faster than the
eager chunked path per layer, forward and forward + backward (docs/benchmarks.md, "Speed work").

The shared library is compiled on first use (`cc -O3 -march=native -fopenmp`, about a second) into
`$MNEMODYN_KERNEL_CACHE` (default `~/.cache/mnemodyn_hf/kernels`), named by a hash of the source, the flags, the
compiler and this CPU's instruction sets, so a cache shared between machines never hands one CPU another's binary.
Without a C compiler (or with `MNEMODYN_NATIVE_KERNELS=0`) the model runs the eager path: `kernel_status()` says why.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).parent / "kernels" / "field_contraction.c"
COMPILE_FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-fopenmp")
DISABLE_VARIABLE = "MNEMODYN_NATIVE_KERNELS"
CACHE_VARIABLE = "MNEMODYN_KERNEL_CACHE"


@dataclass(frozen=True)
class KernelStatus:
    """Whether the fused kernel is loaded, and if not, why (a sentence naming the fix)."""

    library: ctypes.CDLL | None
    reason: str

    @property
    def available(self) -> bool:
        return self.library is not None


def _cache_directory() -> Path:
    configured = os.environ.get(CACHE_VARIABLE)
    return Path(configured) if configured else Path.home() / ".cache" / "mnemodyn_hf" / "kernels"


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


def _build(compiler: str, target: Path) -> None:
    """Compile into a temporary file of the cache directory, then rename: concurrent builders never see half a file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".so.tmp")
    os.close(handle)
    try:
        subprocess.run(
            [compiler, *COMPILE_FLAGS, str(SOURCE), "-o", temporary],
            check=True,
            capture_output=True,
            text=True,
        )
        os.replace(temporary, target)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _declare(library: ctypes.CDLL) -> ctypes.CDLL:
    pointer, size = ctypes.c_void_p, ctypes.c_long
    library.mnemodyn_tanh_field_forward.argtypes = [pointer] * 5 + [size] * 4 + [ctypes.c_int]
    library.mnemodyn_tanh_field_backward.argtypes = [pointer] * 8 + [size] * 4 + [ctypes.c_int]
    library.mnemodyn_tanh_field_forward.restype = ctypes.c_int
    library.mnemodyn_tanh_field_backward.restype = ctypes.c_int
    return library


@functools.lru_cache(maxsize=1)
def kernel_status() -> KernelStatus:
    """Build (once per machine) and load the fused kernel; never raises."""
    if os.environ.get(DISABLE_VARIABLE, "1").strip().lower() in {"0", "false", "no", "off"}:
        return KernelStatus(None, f"disabled by {DISABLE_VARIABLE}={os.environ[DISABLE_VARIABLE]}")
    if not SOURCE.is_file():  # e.g. the modeling code copied into a Hub folder (trust_remote_code) without kernels/
        return KernelStatus(None, f"the kernel source {SOURCE} is missing (install mnemodyn_hf to get it)")
    compiler = _compiler()
    if compiler is None:
        return KernelStatus(None, "no C compiler found (install gcc or clang, or point $CC at one)")
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, check=True).stdout
        key = hashlib.sha256(
            "\n".join([SOURCE.read_text(), " ".join(COMPILE_FLAGS), version, _cpu_signature()]).encode()
        ).hexdigest()[:16]
        target = _cache_directory() / f"field_contraction-{key}.so"
        if not target.exists():
            _build(compiler, target)
        return KernelStatus(_declare(ctypes.CDLL(str(target))), f"loaded {target}")
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", None) or str(error)
        logger.info("mnemodyn_hf: the fused field kernel is unavailable, using the eager path: %s", detail.strip())
        return KernelStatus(None, f"building with {compiler} failed: {detail.strip()[:500]}")


__all__ = ["KernelStatus", "kernel_status"]
