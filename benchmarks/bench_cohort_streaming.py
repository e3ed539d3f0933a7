"""Does a cohort stream from disk through a torch DataLoader with bounded memory?

Writes a synthetic cohort (N sequences of T x R float32 in the cohort schema) to Arrow files under `--folder`,
then, in a fresh process, iterates it once through `torch.utils.data.DataLoader` and reports peak memory against
the bytes of BOLD on disk. Memory is the proportional set size (PSS) of the process and its DataLoader workers,
so pages shared after `fork` are counted once, split into

* anonymous memory: what the processes really hold (batches, buffers, Python objects);
* file-backed memory: pages of the memory-mapped Arrow files, i.e. page cache that the kernel drops under
  pressure, so it does not limit the size of a cohort.

`--control` also streams the same files after loading them into RAM (`in_memory=True`), to show what the
measurement reports when the data does not stay on disk. Usage:

    python benchmarks/bench_cohort_streaming.py --sequences 5000 --folder /tmp/mnemodyn-stream

The folder is deleted at the end unless --keep is given.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import datasets
import numpy as np
import psutil
import torch

from benchmarks.machine import machine_description, machine_line
from mnemodyn_hf.data import cohort_features


@dataclass
class Memory:
    """Proportional set size of this process and its children, MiB."""

    anonymous: float
    file_backed: float

    @classmethod
    def now(cls) -> Memory:
        anonymous = file_backed = 0
        me = psutil.Process()
        for process in [me, *me.children(recursive=True)]:
            try:
                lines = Path(f"/proc/{process.pid}/smaps_rollup").read_text().splitlines()
            except (FileNotFoundError, ProcessLookupError):  # a worker that just exited
                continue
            fields = {line.split(":")[0]: int(line.split()[1]) for line in lines[1:]}
            anonymous += fields["Pss_Anon"]
            file_backed += fields["Pss_File"] + fields["Pss_Shmem"]
        return cls(anonymous / 1024, file_backed / 1024)


def write_synthetic_cohort(folder: Path, sequences: int, frames: int, rois: int, seed: int = 0) -> list[str]:
    """Write `sequences` runs of random (frames, rois) float32 BOLD as Arrow files under `folder`; return them."""
    dataset = datasets.Dataset.from_generator(
        _synthetic_runs,
        features=cohort_features(rois),
        gen_kwargs={"sequences": sequences, "frames": frames, "rois": rois, "seed": seed},
        cache_dir=str(folder),
        writer_batch_size=max(1, 64 * 2**20 // (frames * rois * 4)),
    )
    return [cache["filename"] for cache in dataset.cache_files]


def _synthetic_runs(sequences: int, frames: int, rois: int, seed: int):
    rng = np.random.default_rng(seed)
    for index in range(sequences):
        yield {
            "bold": rng.standard_normal((frames, rois), dtype=np.float32),
            "tr": 0.735,
            "subject": f"{index // 2:05d}",
            "session": "",
            "run": str(index % 2 + 1),
            "site": "",
            "path": "",
        }


@dataclass
class StreamReport:
    sequences: int
    dataset_mib: float
    in_memory: bool
    batch_size: int
    num_workers: int
    seconds: float
    start_anonymous_mib: float
    peak_anonymous_growth_mib: float
    peak_file_backed_mib: float
    checksum: float


def stream(files: list[str], batch_size: int, num_workers: int, in_memory: bool = False) -> StreamReport:
    """Open the Arrow `files` (memory-mapped, or read into RAM with `in_memory`) and iterate them once through a
    DataLoader, sampling memory after every batch. Run it in a fresh process for a clean baseline."""
    start = Memory.now()
    dataset = datasets.concatenate_datasets([datasets.Dataset.from_file(f, in_memory=in_memory) for f in files])
    loader = torch.utils.data.DataLoader(
        dataset.with_format("torch", columns=["bold"]), batch_size=batch_size, num_workers=num_workers
    )
    peak = Memory.now()
    checksum, frames, rois = 0.0, 0, 0
    began = time.perf_counter()
    for batch in loader:
        checksum += float(batch["bold"][:, 0, 0].sum())
        frames, rois = batch["bold"].shape[1:]
        memory = Memory.now()
        peak = Memory(max(peak.anonymous, memory.anonymous), max(peak.file_backed, memory.file_backed))
        del batch
    return StreamReport(
        sequences=len(dataset),
        dataset_mib=len(dataset) * frames * rois * 4 / 2**20,
        in_memory=in_memory,
        batch_size=batch_size,
        num_workers=num_workers,
        seconds=time.perf_counter() - began,
        start_anonymous_mib=start.anonymous,
        peak_anonymous_growth_mib=peak.anonymous - start.anonymous,
        peak_file_backed_mib=peak.file_backed,
        checksum=checksum,
    )


def stream_in_fresh_process(files: list[str], batch_size: int, num_workers: int, in_memory: bool = False):
    """[`stream`] in a newly spawned interpreter, so nothing this process holds or freed skews the numbers."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(stream, files, batch_size, num_workers, in_memory).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sequences", type=int, default=5000)
    parser.add_argument("--frames", type=int, default=490)
    parser.add_argument("--rois", type=int, default=450)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--control", action="store_true", help="also stream after loading the files into RAM")
    parser.add_argument("--folder", type=Path, default=Path("/tmp/mnemodyn-stream"))
    parser.add_argument("--keep", action="store_true", help="keep the Arrow files")
    args = parser.parse_args()

    print(
        json.dumps(
            {
                "machine": f"{machine_line(machine_description())}, "
                f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM",
                "torch": torch.__version__,
                "datasets": datasets.__version__,
            }
        )
    )
    began = time.perf_counter()
    files = write_synthetic_cohort(args.folder, args.sequences, args.frames, args.rois)
    on_disk = sum(os.path.getsize(f) for f in files) / 2**20
    print(json.dumps({"write_seconds": round(time.perf_counter() - began, 1), "arrow_mib_on_disk": round(on_disk, 1)}))
    try:
        runs = [(workers, False) for workers in args.num_workers] + ([(0, True)] if args.control else [])
        for num_workers, in_memory in runs:
            report = stream_in_fresh_process(files, args.batch_size, num_workers, in_memory)
            print(
                json.dumps(
                    {
                        key: round(value, 2) if isinstance(value, float) else value
                        for key, value in asdict(report).items()
                    }
                )
            )
    finally:
        if not args.keep:
            shutil.rmtree(args.folder, ignore_errors=True)


if __name__ == "__main__":
    main()
