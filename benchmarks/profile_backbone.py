"""Where the backbone's time goes: a torch.profiler table of forward and training step, and a cost model.

The cost model counts the work of one step from the shapes and divides it by this machine's peaks measured in the same
process (sgemm GFLOP/s, ATen tanh elements/s, copy bandwidth): the GEMM/conv FLOPs the profiler attributes, plus the
vector field's work, which is the fused kernel's counted arithmetic (its tanh included) at sgemm speed where the
kernel runs, and the expansion's activations at ATen's tanh speed on the eager path. `fraction_of_peak` = the time
the step would take at those peaks / the measured time.

    python -m benchmarks.profile_backbone                       # released size, B 4, T 490 (about 2 min)
    python -m benchmarks.profile_backbone --size tiny --frames 64 --json /tmp/profile.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.bench_backbone import SIZES, best_seconds, build, machine_description
from benchmarks.bench_step_budget import field_kernel_operations
from mnemodyn_hf.native_kernels import kernel_status

TOP_OPERATORS = 12
ACTIVATION_OPS = ("aten::tanh", "aten::tanh_")
#: profiler operator -> the FlopCounterMode operator whose FLOPs it executes
FLOP_NAMES = {"aten::mkldnn_convolution": "aten.convolution", "aten::convolution_backward": "aten.convolution_backward"}


def machine_peaks(elements: int = 1 << 22, matrix: int = 2048) -> dict:
    """sgemm GFLOP/s, tanh elements/s (in place, cache-sized chunks as the field contraction uses) and copy GB/s."""
    a, b = torch.randn(matrix, matrix), torch.randn(matrix, matrix)
    gemm = best_seconds(lambda: torch.mm(a, b))
    chunk = torch.randn(1 << 18)
    chunks = elements // chunk.numel()

    def tanh_chunks():
        for _ in range(chunks):
            torch.tanh(chunk, out=chunk)

    tanh = best_seconds(tanh_chunks)
    source, target = torch.randn(1 << 26), torch.empty(1 << 26)
    copy = best_seconds(lambda: target.copy_(source))
    return {
        "sgemm_gflops": 2 * matrix**3 / gemm / 1e9,
        "tanh_elements_per_second": chunks * chunk.numel() / tanh,
        "copy_gbytes_per_second": 2 * 4 * source.numel() / copy / 1e9,
    }


def _step(model, x, mode: str):
    if mode == "forward":
        model.eval()

        def run():
            with torch.no_grad():
                model(x)

        return run
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

    def run():
        loss = torch.nn.functional.mse_loss(model(x).last_hidden_state, x)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return run


def profile_step(size: str, batch: int, frames: int, mode: str) -> dict:
    """One warm step timed, one profiled: the top operators by self time, their FLOPs and the activation count."""
    model = build("mnemodyn", size, torch.device("cpu"))
    x = torch.randn(batch, frames, SIZES[size]["num_rois"])
    run = _step(model, x, mode)
    fused = model.config.activation == "tanh" and kernel_status().available  # what "auto" picks for fp32 on CPU
    seconds = best_seconds(run, repeats=2)
    counter = FlopCounterMode(display=False)  # matmul and convolution FLOPs, forward and backward
    with counter:
        run()
    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        run()
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:TOP_OPERATORS]
    activations = sum(
        e.count * torch.Size(e.input_shapes[0]).numel()
        for e in prof.key_averages(group_by_input_shape=True)
        if e.key in ACTIVATION_OPS and e.input_shapes and e.input_shapes[0]
    )
    flops_by_operator = {str(op): n for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return {
        "mode": mode,
        "seconds": seconds,
        "profiled_self_seconds": total,
        "flops": counter.get_total_flops(),
        "flops_by_operator": flops_by_operator,
        "activation_elements": activations,
        "fused_field_kernel": fused,
        "operators": [
            {
                "name": e.key,
                "calls": e.count,
                "self_seconds": e.self_cpu_time_total / 1e6,
                "share": e.self_cpu_time_total / 1e6 / total,
            }
            for e in rows
        ],
    }


def compiled_contraction_probe(rois: int = 450, channels: int = 300, frames: int = 28, repeats: int = 20) -> dict:
    """One chunk of the field contraction, eager (the package's GEMM + in-place tanh + bmm) against the same math
    written as one broadcast expression for `torch.compile` (inductor can fuse the expansion, the tanh and the
    contraction into one loop); compile time included."""
    code = torch.cat([torch.randn(frames, 3), torch.ones(frames, 1)], dim=1)
    weight = torch.randn(4, rois * channels) * 0.3
    derivative = torch.randn(frames, rois)

    def eager():
        field = torch.mm(code, weight).tanh_().view(frames, rois, channels)
        return torch.bmm(derivative.unsqueeze(1), field).squeeze(1)

    def fused(code, weight, derivative):
        field = torch.tanh((code[:, :, None] * weight[None]).sum(1)).view(frames, rois, channels)
        return (field * derivative[:, :, None]).sum(1)

    start = time.perf_counter()
    compiled = torch.compile(fused, dynamic=False)
    compiled(code, weight, derivative)
    compile_seconds = time.perf_counter() - start
    return {
        "elements": frames * rois * channels,
        "compile_seconds": compile_seconds,
        "eager_seconds": best_seconds(eager, repeats),
        "compiled_seconds": best_seconds(lambda: compiled(code, weight, derivative), repeats),
    }


def chunk_sweep(chunks=(1 << 20, 1 << 22, 1 << 24), size: str = "released", batch: int = 4, frames: int = 490):
    """Forward and training step (fused AdamW) of the eager field path per `max_chunk_elements`, same process, best
    of 3 each."""
    from mnemodyn_hf import MnemoDynConfig, MnemoDynModel

    rows = []
    x = torch.randn(batch, frames, SIZES[size]["num_rois"])
    for chunk in chunks:
        torch.manual_seed(0)
        config = MnemoDynConfig(  # chunks exist only on the eager path; the fused kernel has none
            reference_compatible=True, max_chunk_elements=chunk, field_implementation="eager", **SIZES[size]
        )
        seconds = {mode: best_seconds(_step(MnemoDynModel(config), x, mode)) for mode in ("forward", "train_step")}
        rows.append({"max_chunk_elements": chunk, **seconds})
    return rows


def field_elements(size: str, batch: int, frames: int) -> int:
    """Vector-field expansion entries of one forward pass: layers x B x T x R x C."""
    config = SIZES[size]
    return config["num_layers"] * batch * frames * config["num_rois"] * config["latent_channels"]


def cost_model(step: dict, peaks: dict, elements: int, operations: int) -> dict:
    """Ideal seconds at this machine's peaks and the fraction of them the measured step reaches. With the fused
    kernel: its `operations` (each lane's multiply or multiply-add taken as two operations of the sgemm rate, as a
    multiply-add is) plus the profiler's FLOPs, at sgemm speed. On the eager path: the expansion's `elements`
    activations (forward E; training 2E plus E derivatives, one activation each) at ATen's tanh speed, plus the
    profiler's FLOPs (which include the expansion's GEMMs) at sgemm speed."""
    fused = step["fused_field_kernel"]
    activations = 0 if fused else elements if step["mode"] == "forward" else 3 * elements
    activation_seconds = activations / peaks["tanh_elements_per_second"]
    field_flops = 2 * operations if fused else 0
    flop_seconds = (step["flops"] + field_flops) / (peaks["sgemm_gflops"] * 1e9)
    ideal = activation_seconds + flop_seconds
    return {
        "field_elements": elements,
        "activation_equivalents": activations,
        "activation_seconds_at_peak": activation_seconds,
        "fused_field_operations": operations if fused else 0,
        "flop_seconds_at_peak": flop_seconds,
        "ideal_seconds": ideal,
        "fraction_of_peak": ideal / step["seconds"],
    }


def run(size: str = "released", batch: int = 4, frames: int | None = None, compile_probe: bool = True) -> dict:
    frames = frames or SIZES[size]["context_length"]
    torch.manual_seed(0)
    peaks = machine_peaks()
    elements = field_elements(size, batch, frames)
    steps = [profile_step(size, batch, frames, mode) for mode in ("forward", "train_step")]
    for step in steps:
        operations = field_kernel_operations(SIZES[size], batch * frames, backward=step["mode"] != "forward")
        step["cost_model"] = cost_model(step, peaks, elements, operations)
    return {
        "compiled_contraction": compiled_contraction_probe() if compile_probe else None,
        "benchmark": "profile",
        "size": size,
        "batch": batch,
        "frames": frames,
        "peaks": peaks,
        "steps": steps,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    peaks = report["peaks"]
    lines = [
        f"Measured peaks of this machine (same process): sgemm {peaks['sgemm_gflops']:.1f} GFLOP/s, tanh "
        f"{peaks['tanh_elements_per_second'] / 1e9:.2f} G elements/s, copy {peaks['copy_gbytes_per_second']:.1f} GB/s.",
        "",
    ]
    for step in report["steps"]:
        cost = step["cost_model"]
        lines += [
            f"**{step['mode']}**: {step['seconds']:.3f} s per step; {step['flops'] / 1e9:.2f} GFLOP in GEMMs/convs; "
            f"{step['activation_elements'] / 1e6:.0f} M activation (tanh) elements counted by the profiler "
            f"(field expansion: {cost['field_elements'] / 1e6:.0f} M entries per forward"
            + (
                f"; they run inside the fused kernel, {cost['fused_field_operations'] / 1e9:.2f} G vector-lane "
                "operations with the tanh, which the profiler's counters do not see, and the cost model adds)."
                if step["fused_field_kernel"]
                else ")."
            ),
            "",
            "| operator | calls | self s | share | GFLOP | achieved GFLOP/s |",
            "|---|---|---|---|---|---|",
        ]
        for op in step["operators"]:
            name = FLOP_NAMES.get(op["name"], op["name"].replace("aten::", "aten."))
            flops = step["flops_by_operator"].get(name, step["flops_by_operator"].get(name + ".default", 0))
            rate = f"{flops / 1e9:.2f} | {flops / op['self_seconds'] / 1e9:.1f}" if flops else " | "
            lines.append(f"| `{op['name']}` | {op['calls']} | {op['self_seconds']:.3f} | {op['share']:.1%} | {rate} |")
        lines += [
            "",
            f"Cost model: {cost['activation_equivalents'] / 1e6:.0f} M ATen activations at peak = "
            f"{cost['activation_seconds_at_peak']:.3f} s, FLOPs at sgemm peak = {cost['flop_seconds_at_peak']:.3f} s; "
            f"ideal {cost['ideal_seconds']:.3f} s vs measured {step['seconds']:.3f} s: "
            f"**{cost['fraction_of_peak']:.0%} of peak**.",
            "",
        ]
    probe = report.get("compiled_contraction")
    if probe:
        lines.append(
            f"`torch.compile` of one contraction chunk ({probe['elements'] / 1e6:.1f} M field entries, fused "
            f"broadcast form): {probe['compiled_seconds'] * 1e3:.2f} ms vs eager {probe['eager_seconds'] * 1e3:.2f} "
            f"ms, after {probe['compile_seconds']:.0f} s of compilation."
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--chunk-sweep", action="store_true", help="only time max_chunk_elements 1Mi/4Mi/16Mi")
    args = parser.parse_args(argv)
    if args.chunk_sweep:
        rows = chunk_sweep(size=args.size, batch=args.batch, frames=args.frames or 490)
        print("| max_chunk_elements | forward s | training step s |\n|---|---|---|")
        for row in rows:
            print(f"| {row['max_chunk_elements']:,} | {row['forward']:.3f} | {row['train_step']:.3f} |")
        if args.json:
            args.json.write_text(json.dumps({"chunk_sweep": rows, "machine": machine_description()}, indent=2))
        return
    report = run(args.size, args.batch, args.frames)
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
