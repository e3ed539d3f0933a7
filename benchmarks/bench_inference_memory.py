"""Inference memory: the peak RSS of a fresh process that loads released-size weights and runs one forward pass.

A first subprocess saves a randomly initialised released-size `MnemoDynModel` (`save_pretrained`: config.json +
model.safetensors). A second, fresh one imports torch and mnemodyn_hf, notes its RSS, loads the folder with
`MnemoDynModel.from_pretrained` and runs one `torch.inference_mode` forward at B 4, T 490, then reads its peak RSS
(`VmHWM` of /proc/self/status: every page the process held, the safetensors mapping's file pages included). The
result relates that peak to the size of model.safetensors, both in total and above the RSS after the imports (the
Python, torch and library pages any model of any size pays for).

    python -m benchmarks.bench_inference_memory                        # released size, B 4, T 490
    python -m benchmarks.bench_inference_memory --size tiny --json out.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.machine import machine_description, machine_line

ROOT = Path(__file__).resolve().parents[1]

_SAVE = """
import sys, torch
from benchmarks.bench_backbone import SIZES
from mnemodyn_hf import MnemoDynConfig, MnemoDynModel
torch.manual_seed(0)
MnemoDynModel(MnemoDynConfig(**SIZES[sys.argv[2]])).save_pretrained(sys.argv[1])
"""

_LOAD_AND_RUN = """
import json, sys, time
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
import torch
from mnemodyn_hf import MnemoDynModel
after_imports = status("VmRSS")
began = time.perf_counter()
model = MnemoDynModel.from_pretrained(sys.argv[1]).eval()
loaded = time.perf_counter()
after_load = status("VmRSS")
dtypes = sorted({str(p.dtype) for p in model.parameters()})
x = torch.randn(int(sys.argv[2]), int(sys.argv[3]), model.config.num_rois, generator=torch.Generator().manual_seed(0))
with torch.inference_mode():
    finite = bool(torch.isfinite(model(x).last_hidden_state).all())
print(json.dumps({
    "rss_after_imports_bytes": after_imports, "rss_after_load_bytes": after_load, "peak_rss_bytes": status("VmHWM"),
    "load_seconds": loaded - began, "forward_seconds": time.perf_counter() - loaded, "parameter_dtypes": dtypes,
    "parameters": sum(p.numel() for p in model.parameters()), "output_finite": finite,
}))
"""


def _python(code: str, *args: str) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark subprocess failed:\n{done.stderr[-3000:]}")
    return done.stdout


def run(size: str = "released", batch: int = 4, frames: int = 490) -> dict:
    """Save the weights, then load them and run one forward in a fresh process; peak RSS relative to the file."""
    with tempfile.TemporaryDirectory() as folder:
        _python(_SAVE, folder, size)
        weights = (Path(folder) / "model.safetensors").stat().st_size
        measured = json.loads(_python(_LOAD_AND_RUN, folder, str(batch), str(frames)).strip().splitlines()[-1])
    return {
        "benchmark": "inference_memory",
        "size": size,
        "batch": batch,
        "frames": frames,
        "weights_bytes": weights,
        **measured,
        "peak_over_weights": measured["peak_rss_bytes"] / weights,
        "peak_above_imports_over_weights": (measured["peak_rss_bytes"] - measured["rss_after_imports_bytes"]) / weights,
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    mib = 2**20
    return "\n".join(
        [
            "| weights (model.safetensors) | RSS after imports | RSS after loading | peak RSS (load + forward) | "
            "peak / weights | (peak - RSS after imports) / weights |",
            "|---|---|---|---|---|---|",
            f"| {report['weights_bytes'] / mib:.0f} MiB | {report['rss_after_imports_bytes'] / mib:.0f} MiB | "
            f"{report['rss_after_load_bytes'] / mib:.0f} MiB | {report['peak_rss_bytes'] / mib:.0f} MiB | "
            f"{report['peak_over_weights']:.2f} | {report['peak_above_imports_over_weights']:.2f} |",
        ]
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=("released", "tiny"), default="released")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--frames", type=int, default=490)
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    args = parser.parse_args(argv)
    report = run(args.size, args.batch, args.frames)
    print(f"Measured {report['date']} on {machine_line(report['machine'])}.")
    print(format_table(report))
    print(f"parameters {report['parameters']:,} ({', '.join(report['parameter_dtypes'])})")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
