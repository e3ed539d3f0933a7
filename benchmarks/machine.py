"""The machine a benchmark ran on, recorded in every result: CPU model, vector ISA, cores, threads, the compiler
and flags of the fused field kernel (with the ISA those flags build for, which `MNEMODYN_KERNEL_MARCH` can lower), the
ISA of torch's own vector code (which `ATEN_CPU_CAPABILITY` can lower, as `ONEDNN_MAX_CPU_ISA` and
`MKL_ENABLE_INSTRUCTIONS` lower its GEMM libraries'), and the page size torch's allocations get (the kernel's
transparent-huge-page mode and torch's `THP_MEM_ALLOC_ENABLE`).

    from benchmarks.machine import machine_description, machine_line
    report["machine"] = machine_description()    # a dict, in the JSON
    machine_line(report["machine"])              # one line, for docs/benchmarks.md
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from pathlib import Path

from mnemodyn_hf import native_kernels
from mnemodyn_hf.atomic_files import write_file_atomically

#: Widest vector extension first: (name, /proc/cpuinfo flags, compiler macros).
ISAS = (
    ("AVX-512", {"avx512f"}, {"__AVX512F__"}),
    ("AVX2", {"avx2"}, {"__AVX2__"}),
    ("NEON", {"asimd", "neon"}, {"__ARM_NEON", "__ARM_NEON__"}),
    ("SSE2", {"sse2"}, {"__SSE2__"}),
)


def _cpuinfo() -> dict[str, str]:
    """The first value of each field of /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return fields
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model(fields: dict[str, str]) -> str:
    """Model name, with the family/model numbers that tell CPU generations apart behind a generic name."""
    name = fields.get("model name") or fields.get("Model") or platform.processor() or platform.machine()
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']}, model {fields['model']})"
    elif "CPU part" in fields:
        name += f" (implementer {fields.get('CPU implementer', '?')}, part {fields['CPU part']})"
    return name


def cpu_isa(fields: dict[str, str]) -> str:
    """The widest vector extension the CPU reports."""
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    if platform.machine() in {"aarch64", "arm64"}:
        flags.add("asimd")  # NEON is mandatory on AArch64
    return next((name for name, cpu_flags, _ in ISAS if flags & cpu_flags), "scalar")


def kernel_build() -> dict[str, str]:
    """The fused kernel's compiler (first line of `--version`), flags, and the ISA those flags target."""
    compiler = native_kernels._compiler()
    if compiler is None:
        return {"kernel_compiler": "none", "kernel_flags": "", "kernel_isa": "none"}
    flags = native_kernels.compile_flags()
    version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout.splitlines()
    macros = subprocess.run(
        [compiler, *[f for f in flags if f.startswith("-m")], "-dM", "-E", "-x", "c", os.devnull],
        capture_output=True,
        text=True,
    ).stdout
    defined = {line.split()[1] for line in macros.splitlines() if line.startswith("#define ")}
    isa = next((name for name, _, names in ISAS if defined & names), "scalar")
    return {"kernel_compiler": version[0] if version else compiler, "kernel_flags": " ".join(flags), "kernel_isa": isa}


#: Variables that lower the ISA of torch's vector code and of its GEMM libraries (oneDNN, MKL) below the CPU's.
TORCH_ISA_VARIABLES = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")
#: torch's switch for huge-page CPU allocations (read once, when torch first allocates; `bench_page_size.py`).
TORCH_HUGE_PAGES_VARIABLE = "THP_MEM_ALLOC_ENABLE"
_THP_MODE = Path("/sys/kernel/mm/transparent_hugepage/enabled")
_MEMORY_ROLLUP = Path("/proc/self/smaps_rollup")


def transparent_huge_pages() -> str:
    """The kernel's transparent-huge-page mode (`always`, `madvise` or `never`; `unavailable` off Linux or without
    THP). In `madvise` mode only memory a program asks for gets huge pages, and torch asks only when
    `THP_MEM_ALLOC_ENABLE=1` is set before it starts."""
    try:
        text = _THP_MODE.read_text()
    except OSError:
        return "unavailable"
    chosen = re.search(r"\[(\w+)\]", text)
    return chosen.group(1) if chosen else text.strip()


def huge_page_bytes() -> int:
    """Anonymous memory this process holds in transparent huge pages (0 where Linux does not report it)."""
    try:
        text = _MEMORY_ROLLUP.read_text()
    except OSError:
        return 0
    found = re.search(r"^AnonHugePages:\s+(\d+) kB", text, re.MULTILINE)
    return int(found.group(1)) * 1024 if found else 0


def machine_description() -> dict:
    """Everything a benchmark's numbers depend on, and the 1-minute load average (other work makes timings noisy)."""
    import torch  # here, so that scripts without torch can import this module cheaply

    fields = _cpuinfo()
    info = {
        "cpu": cpu_model(fields),
        "cpu_isa": cpu_isa(fields),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        **kernel_build(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_isa": torch.backends.cpu.get_cpu_capability(),
        "torch_isa_limits": {name: os.environ[name] for name in TORCH_ISA_VARIABLES if os.environ.get(name)},
        "transparent_huge_pages": transparent_huge_pages(),
        "torch_huge_page_allocations": os.environ.get(TORCH_HUGE_PAGES_VARIABLE, "unset"),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    info["load_average_1min"] = round(os.getloadavg()[0], 2)
    return info


def machine_line(machine: dict | str) -> str:
    """One line for the docs; results recorded before the CPU fields existed keep their `key value` listing."""
    if isinstance(machine, str):
        return machine
    if "cpu_isa" not in machine:
        return ", ".join(f"{key} {value}" for key, value in machine.items())
    kernel = f"kernel {machine['kernel_isa']} ({machine['kernel_compiler']}, {machine['kernel_flags']})"
    gpu = f", {machine['gpu']}" if "gpu" in machine else ""
    torch_isa = ""
    if "torch_isa" in machine:
        limits = "".join(f", {name} {value}" for name, value in machine["torch_isa_limits"].items())
        torch_isa = f" (vector code {machine['torch_isa']}{limits})"
    pages = ""
    if "transparent_huge_pages" in machine:
        pages = (
            f", transparent huge pages {machine['transparent_huge_pages']} "
            f"({TORCH_HUGE_PAGES_VARIABLE} {machine['torch_huge_page_allocations']})"
        )
    return (
        f"{machine['cpu']}, {machine['cpu_isa']}, {machine['cpu_count']} CPUs, {machine['torch_threads']} torch "
        f"threads, {kernel}{gpu}, torch {machine['torch']}{torch_isa}, {machine['platform']}{pages}, load average "
        f"{machine['load_average_1min']}"
    )


def print_and_save(report: dict, table: str, json_path: Path | None) -> None:
    """Print the report's machine line and its table; write the report as JSON (atomically) when a path is given."""
    print(f"Measured {report['date']} on {machine_line(report['machine'])}.")
    print(table)
    if json_path:
        write_file_atomically(json_path, json.dumps(report, indent=2))
