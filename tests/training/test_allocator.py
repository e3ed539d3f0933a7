import os
import platform
import subprocess
import sys

import pytest

from mnemodyn_hf.training.allocator import VARIABLE, retain_freed_memory

#: 20 blocks of 8 MiB allocated, touched and freed, five times; prints the minor page faults of the last four rounds
CHURN = """
import ctypes, resource, sys
from mnemodyn_hf.training.allocator import retain_freed_memory
print(retain_freed_memory())
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
faults = 0
for round in range(5):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [libc.malloc(8 << 20) for _ in range(20)]
    for block in blocks:
        ctypes.memset(block, 1, 8 << 20)
    for block in blocks:
        libc.free(block)
    if round:
        faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(faults)
"""


def _churn(retain: bool) -> tuple[str, int]:
    environment = {**os.environ, VARIABLE: "1" if retain else "0"}
    done = subprocess.run([sys.executable, "-c", CHURN], capture_output=True, text=True, check=True, env=environment)
    applied, faults = done.stdout.split()
    return applied, int(faults)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_freed_blocks_are_reused_without_faulting_them_in_again():
    applied, retained_faults = _churn(retain=True)
    default_applied, default_faults = _churn(retain=False)
    assert (applied, default_applied) == ("True", "False")
    pages = 4 * 20 * (8 << 20) // 4096  # what four rounds touch
    assert default_faults > pages / 2  # glibc hands the blocks back and faults them in again
    assert retained_faults < pages / 50


def test_the_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv(VARIABLE, "0")
    assert retain_freed_memory() is False
