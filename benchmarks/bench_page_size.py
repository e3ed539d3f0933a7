"""Page size and speed: the literal port and the default MnemoDyn, forward and training step, with torch's CPU
allocations on 4 KiB pages and on transparent huge pages, side by side.

Linux gives a process huge pages (2 MiB) in `madvise` mode, the default of Debian and Ubuntu, only for memory it asks
for; torch asks, for allocations of 2 MiB and up, when `THP_MEM_ALLOC_ENABLE=1` is set before it starts. In `always`
mode (the default of RHEL and Fedora) every large allocation may get them. Each (mode, setting, implementation) runs
bench_backbone's worker in its own process; the settings alternate `--processes` times, so a slow moment of the
machine does not fall on one setting only. Per mode and setting: the best step over its processes, the median of all
its steps, the port's best over MnemoDyn's, and the memory the workers held in huge pages (0 where the kernel's mode
is `never`, or for a model too small to make 2 MiB allocations).

    python -m benchmarks.bench_page_size --batch 1 --json benchmarks/results/page_size.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from tqdm.auto import tqdm

from benchmarks.bench_backbone import MODES, SIZES, run_worker
from benchmarks.machine import TORCH_HUGE_PAGES_VARIABLE, machine_description, print_and_save

#: setting -> the worker's variables (4 KiB pages is set explicitly, so a variable inherited from the caller does not
#: turn huge pages on for both settings)
SETTINGS = {
    "4 KiB pages": {TORCH_HUGE_PAGES_VARIABLE: "0"},
    "transparent huge pages": {TORCH_HUGE_PAGES_VARIABLE: "1"},
}
PORT, MNEMODYN = "literal_reference_port", "mnemodyn"


def summarize(workers: list[dict]) -> dict:
    """Per mode, setting and implementation: best and median step and huge-page bytes; per mode and setting: the
    port's best over MnemoDyn's."""
    summary = {}
    modes = dict.fromkeys(row["mode"] for row in workers)
    for mode, setting in [(mode, setting) for mode in modes for setting in SETTINGS]:
        rows = [row for row in workers if (row["mode"], row["setting"]) == (mode, setting)]
        by_implementation = {}
        for implementation in dict.fromkeys(row["implementation"] for row in rows):
            own = [row for row in rows if row["implementation"] == implementation]
            steps = [seconds for row in own for seconds in row["seconds_all"]]
            by_implementation[implementation] = {
                "best_seconds": min(steps),
                "median_seconds": statistics.median(steps),
                "huge_page_bytes": max(row["huge_page_bytes"] for row in own),
                "processes": len(own),
            }
        ratio = None
        if {PORT, MNEMODYN} <= set(by_implementation):
            ratio = by_implementation[PORT]["best_seconds"] / by_implementation[MNEMODYN]["best_seconds"]
        summary.setdefault(mode, {})[setting] = {"implementations": by_implementation, "port_over_mnemodyn": ratio}
    return summary


def run(
    size: str = "released",
    batch: int = 1,
    repeats: int = 8,
    processes: int = 2,
    modes: tuple[str, ...] = MODES,
) -> dict:
    """Every (mode, setting, implementation) `processes` times, each in a fresh worker, settings alternated."""
    frames = SIZES[size]["context_length"]
    order = [
        (mode, process, setting, implementation)
        for mode in modes
        for process in range(processes)
        for setting in SETTINGS
        for implementation in (PORT, MNEMODYN)
    ]
    workers = []
    for mode, process, setting, implementation in tqdm(order, desc="benchmark workers", unit="process"):
        result = run_worker(implementation, mode, size, batch, frames, repeats, environment=SETTINGS[setting])
        workers.append({"setting": setting, "process": process, **result})
    return {
        "benchmark": "page_size",
        "size": size,
        "batch": batch,
        "frames": frames,
        "repeats": repeats,
        "processes": processes,
        "modes": list(modes),
        "workers": workers,
        "summary": summarize(workers),
        "machine": machine_description(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def format_table(report: dict) -> str:
    lines = [
        "| mode | pages | implementation | best step s | median step s | held in huge pages MiB "
        "| port best / MnemoDyn best |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, settings in report["summary"].items():
        for setting, result in settings.items():
            ratio = result["port_over_mnemodyn"]
            for implementation, row in result["implementations"].items():
                shown = f"{ratio:.2f}x" if ratio is not None and implementation == MNEMODYN else ""
                lines.append(
                    f"| {mode} | {setting} | {implementation} | {row['best_seconds']:.3f} | "
                    f"{row['median_seconds']:.3f} | {row['huge_page_bytes'] / 2**20:.0f} | {shown} |"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=sorted(SIZES), default="released")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=8, help="timed steps per worker (after one warm-up step)")
    parser.add_argument("--processes", type=int, default=2, help="workers per (mode, setting, implementation)")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--json", type=Path, help="write the report to this JSON file")
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.processes < 1:
        parser.error("--repeats and --processes must be at least 1")
    report = run(args.size, args.batch, args.repeats, args.processes, tuple(args.modes))
    print_and_save(report, format_table(report), args.json)


if __name__ == "__main__":
    main()
