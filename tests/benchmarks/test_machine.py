import json
import os
import platform
import subprocess
import sys

import pytest

from benchmarks.machine import cpu_isa, kernel_build, machine_description, machine_line
from mnemodyn_hf import native_kernels


def test_every_result_names_the_cpu_its_vector_isa_threads_and_the_kernel_build():
    machine = machine_description()
    assert {"cpu", "cpu_isa", "cpu_count", "torch_threads", "kernel_compiler", "kernel_flags", "kernel_isa"} <= set(
        machine
    )
    line = machine_line(machine)
    assert machine["cpu"] in line and f"{machine['cpu_isa']}," in line and machine["kernel_flags"] in line
    assert machine_line({"platform": "Linux", "cpu_count": 2}) == "platform Linux, cpu_count 2"  # older results


def test_the_widest_vector_extension_is_named():
    assert cpu_isa({"flags": "sse2 avx2 fma avx512f"}) == "AVX-512"
    assert cpu_isa({"flags": "sse2 avx2 fma"}) == "AVX2"
    assert cpu_isa({"Features": "fp asimd"}) == "NEON"


@pytest.mark.skipif(platform.machine() != "x86_64" or native_kernels._compiler() is None, reason="an x86-64 compiler")
def test_the_kernel_isa_follows_the_march_variable(monkeypatch):
    monkeypatch.setenv(native_kernels.MARCH_VARIABLE, "x86-64-v3")
    build = kernel_build()
    assert build["kernel_isa"] == "AVX2" and "-march=x86-64-v3" in build["kernel_flags"]
    monkeypatch.setenv(native_kernels.MARCH_VARIABLE, "x86-64-v3; rm -rf /")
    with pytest.raises(ValueError, match="is not a -march target name"):
        native_kernels.compile_flags()


def test_the_page_size_torch_gets_is_recorded(monkeypatch, tmp_path):
    from benchmarks import machine as machine_module

    mode = tmp_path / "enabled"
    mode.write_text("always [madvise] never\n")
    monkeypatch.setattr(machine_module, "_THP_MODE", mode)
    monkeypatch.setenv(machine_module.TORCH_HUGE_PAGES_VARIABLE, "1")
    described = machine_description()
    assert (described["transparent_huge_pages"], described["torch_huge_page_allocations"]) == ("madvise", "1")
    assert "transparent huge pages madvise (THP_MEM_ALLOC_ENABLE 1)" in machine_line(described)
    monkeypatch.setattr(machine_module, "_THP_MODE", tmp_path / "missing")
    assert machine_module.transparent_huge_pages() == "unavailable"
    rollup = tmp_path / "smaps_rollup"
    rollup.write_text("Rss:             1024 kB\nAnonHugePages:      4096 kB\nShmemPmdMapped:        0 kB\n")
    monkeypatch.setattr(machine_module, "_MEMORY_ROLLUP", rollup)
    assert machine_module.huge_page_bytes() == 4 << 20
    monkeypatch.setattr(machine_module, "_MEMORY_ROLLUP", tmp_path / "missing")
    assert machine_module.huge_page_bytes() == 0


def test_the_isa_of_torchs_own_vector_code_and_its_limits_are_recorded():
    # torch reads ATEN_CPU_CAPABILITY when it starts, so the lowered build is described from a fresh interpreter
    script = "import json; from benchmarks.machine import machine_description as d; print(json.dumps(d()))"
    environment = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    environment.pop("MKL_ENABLE_INSTRUCTIONS", None)
    lowered = json.loads(
        subprocess.run(
            [sys.executable, "-c", script], env=environment, capture_output=True, text=True, check=True
        ).stdout
    )
    assert lowered["torch_isa"] == "DEFAULT"
    assert lowered["torch_isa_limits"] == {"ATEN_CPU_CAPABILITY": "default", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    assert "(vector code DEFAULT, ATEN_CPU_CAPABILITY default, ONEDNN_MAX_CPU_ISA AVX2)" in machine_line(lowered)
    current = machine_description()  # unlowered: an x86 CPU with AVX2 runs torch's AVX2 or AVX-512 code
    if current["cpu_isa"] in ("AVX2", "AVX-512") and not os.environ.get("ATEN_CPU_CAPABILITY"):
        assert current["torch_isa"] in ("AVX2", "AVX512")
