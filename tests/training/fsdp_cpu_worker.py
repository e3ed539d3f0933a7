"""A masked-pretraining run of MnemoDyn sharded with torch FSDP2 (`fully_shard`) over gloo on CPU.

Accelerate runs FSDP only on accelerators (under ACCELERATE_USE_CPU it silently falls back to DDP), so this worker
drives torch's FSDP2 directly: every `MnemoDynLayer` and the root are sharded over a CPU device mesh; each step's
global batch of windows (a function of the step) is split across ranks; checkpoints are sharded
`torch.distributed.checkpoint` folders; the final full state dict is written by rank 0.

    python -m torch.distributed.run --nproc_per_node 2 tests/training/fsdp_cpu_worker.py OUT STEPS [--kill-after K]
        [--resume CHECKPOINT]

With one process (plain `python`), the same split is computed in a loop and the losses averaged: the reference
the sharded run must reproduce.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from safetensors.torch import save_file
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)

from mnemodyn_hf import MnemoDynConfig
from mnemodyn_hf.modeling_pretraining import MnemoDynForPreTraining

PARTS = 2  # the global batch is always computed as two halves (one per rank, or in a loop)
CONFIG = dict(num_rois=12, num_layers=2, projection_size=16, latent_channels=8, context_length=64, wavelet_levels=3)


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1000 + step)
    return torch.randn(4, 64, CONFIG["num_rois"], generator=generator), torch.arange(4) + 4 * step


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("steps", type=int)
    parser.add_argument("--kill-after", type=int, default=0)
    parser.add_argument("--resume", type=Path)
    args = parser.parse_args()
    sharded = "WORLD_SIZE" in os.environ
    if sharded:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if sharded else (0, 1)
    torch.manual_seed(0)
    model = MnemoDynForPreTraining(MnemoDynConfig(**CONFIG))
    if sharded:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (world,))
        for layer in model.mnemodyn.layers:
            fully_shard(layer, mesh=mesh)
        fully_shard(model, mesh=mesh)
        assert type(next(model.parameters())).__name__ == "DTensor"  # really sharded, not replicated
    # SGD with momentum: stateful like AdamW, but without its sign-like first steps that turn last-bit differences
    # in the reduction order of near-zero gradients into learning-rate-sized ones
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    start = 0
    if args.resume is not None:
        model_state, optimizer_state = get_state_dict(model, optimizer)
        state = {"model": model_state, "optimizer": optimizer_state}
        dcp.load(state, checkpoint_id=str(args.resume))
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
        start = int((args.resume / "step.txt").read_text())
    parts = range(rank, PARTS, world)
    for step in range(start, args.steps):
        x, seeds = batch(step)
        loss = sum(model(input_values=x[p::PARTS], corruption_seeds=seeds[p::PARTS]).loss for p in parts) / len(parts)
        loss.backward()  # FSDP averages the ranks' gradients: the mean over the halves, as the loop computes
        optimizer.step()
        optimizer.zero_grad()
        if sharded and step + 1 == args.kill_after:
            model_state, optimizer_state = get_state_dict(model, optimizer)
            checkpoint = args.out / f"checkpoint-{step + 1}"
            dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=str(checkpoint))
            dist.barrier()
            if rank == 0:
                (checkpoint / "step.txt").write_text(str(step + 1))
            dist.barrier()
            os.kill(os.getpid(), signal.SIGKILL)  # every rank dies right after the checkpoint
    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    state = get_model_state_dict(model, options=options) if sharded else model.state_dict()
    if rank == 0:
        args.out.mkdir(parents=True, exist_ok=True)
        save_file({name: tensor.contiguous() for name, tensor in state.items()}, str(args.out / "final.safetensors"))
    if sharded:  # every rank past the save before any tears gloo down (a rank leaving early aborted 1 run in 8)
        dist.barrier()
        dist.destroy_process_group()
        # Gloo can still hold a worker thread that std::terminate()s during interpreter finalization (SIGABRT after
        # a complete run, about 1 run in 30 on torch 2.13); everything is written, so leave without finalizing
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
