"""What bf16 autocast costs in accuracy, at the reference-parity fixtures (the authors' weights and outputs).

Each fixture checkpoint is converted, run in float32 and under `torch.autocast(bfloat16)`, and compared with the
reference output stored beside it; also reported: the bf16 output against our own float32 output. (The field
contraction stays float32 under autocast by design; the MLPs, projections and operator GEMMs run in bf16.)

    python -m benchmarks.bf16_accuracy
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from mnemodyn_hf import MnemoDynModel
from mnemodyn_hf.hub.convert import convert_reference_checkpoint

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "reference_parity"


def run(names=("ref_small_t64", "ref_small_t50"), device: str = "cpu") -> dict:
    rows = []
    for name in names:
        io = load_file(FIXTURES / f"{name}_io.safetensors")
        with tempfile.TemporaryDirectory() as folder:
            convert_reference_checkpoint(FIXTURES / f"{name}.ckpt", Path(folder) / name)
            model = MnemoDynModel.from_pretrained(Path(folder) / name).eval().to(device)
        x, reference = io["input"].to(device), io["output"].to(device)
        with torch.no_grad():
            full = model(x).last_hidden_state
            with torch.autocast(device, dtype=torch.bfloat16):
                half = model(x).last_hidden_state.float()
        scale = reference.abs().max().item()
        rows.append(
            {
                "fixture": name,
                "output_max_abs": scale,
                "fp32_vs_reference": (full - reference).abs().max().item(),
                "bf16_vs_reference": (half - reference).abs().max().item(),
                "bf16_vs_fp32": (half - full).abs().max().item(),
                "bf16_relative_rms": ((half - full).pow(2).mean().sqrt() / full.pow(2).mean().sqrt()).item(),
            }
        )
    return {"benchmark": "bf16_accuracy", "device": device, "rows": rows}


def format_table(report: dict) -> str:
    lines = [
        "| fixture | max abs output | fp32 vs reference | bf16 vs reference | bf16 vs fp32 | bf16 relative RMS |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['fixture']} | {r['output_max_abs']:.3f} | {r['fp32_vs_reference']:.1e} | "
            f"{r['bf16_vs_reference']:.1e} | {r['bf16_vs_fp32']:.1e} | {r['bf16_relative_rms']:.1e} |"
        )
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    report = run(device=args.device)
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
