"""Parcellation speed and memory: the feature extractor against nilearn and wb_command on the same data.

The data: brainspace's real rest run on the 91,282 grayordinates
(`mnemodyn_hf.data.sample_recordings.make_real_dtseries`, 652
frames), extended to `--frames` frames by playing it back and forth; optionally the same run as a real-derived
MNI152NLin6Asym 2 mm 4-D NIfTI (`--volume-frames`). Each measurement runs in a fresh subprocess. Memory comes from
the kernel's peak resident-set size (VmHWM, reset just before the measured call) minus the RSS just before it, so it
counts every allocation (numpy, scipy, C). "Total / input" is the memory the method needs with its input, over the
float32 input array: (input + peak above base) / input for a method given the array in memory, (peak above base) /
input for one that reads the file itself (below 1 when it streams). Time is the best of `--repeats` calls.

Methods on the dense series (T x 91,282 float32):
- `ParcelAverager`: mnemodyn_hf's sparse reduction on the series already in memory (the parcellation itself);
- `MnemoDynFeatureExtractor`: the whole call from the .dtseries.nii path (read + parcellate, no resampling/scaling);
- nilearn `NiftiLabelsMasker`: the same in-memory array as a (91282, 1, 1, T) image with the dlabel's keys as labels;
- `wb_command -cifti-parcellate`: from the file (time and its own peak RSS; its input is not in our memory).

    python -m benchmarks.bench_feature_extraction                  # 1,200 frames, 3 repeats, + a 200-frame volume
    python -m benchmarks.bench_feature_extraction --frames 100 --volume-frames 0 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from datetime import date
from pathlib import Path

import nibabel as nib
import numpy as np

from benchmarks.machine import machine_description, machine_line
from mnemodyn_hf.data.sample_recordings import BRAINSPACE_REST_FRAMES, make_real_dtseries, make_real_volume

IN_MEMORY = ("parcel_averager", "nilearn_masker")  # methods given the series already in memory
DENSE_METHODS = ("parcel_averager", "feature_extractor", "nilearn_masker", "wb_command")
VOLUME_METHODS = ("feature_extractor_volume", "nilearn_masker_volume")
LABELS = {
    "parcel_averager": "mnemodyn_hf ParcelAverager (in memory)",
    "feature_extractor": "MnemoDynFeatureExtractor (from .dtseries.nii)",
    "nilearn_masker": "nilearn NiftiLabelsMasker (in memory)",
    "wb_command": "wb_command -cifti-parcellate (from file)",
    "feature_extractor_volume": "MnemoDynFeatureExtractor (from .nii)",
    "nilearn_masker_volume": "nilearn NiftiLabelsMasker (from .nii)",
}


def _memory_kb() -> tuple[int, int]:
    """(current RSS, peak RSS since the last reset) of this process, in kB."""
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


def _reset_peak() -> int:
    """Reset the peak RSS to the current RSS; returns the current RSS in kB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _memory_kb()[0]


def back_and_forth(num_available: int, num_frames: int) -> np.ndarray:
    """Frame indices that play `num_available` frames forwards, backwards, forwards... for `num_frames` frames."""
    period = max(2 * num_available - 2, 1)
    phase = np.arange(num_frames) % period
    return np.where(phase < num_available, phase, period - phase)


def build_data(folder: Path, frames: int, volume_frames: int) -> dict[str, str]:
    """The benchmark inputs: a (frames x 91,282) dtseries and, if volume_frames > 0, an MNI 2 mm 4-D volume."""
    real = make_real_dtseries(folder / "real.dtseries.nii", min(frames, BRAINSPACE_REST_FRAMES))
    image = nib.load(real)
    series_axis, brain_models = (image.header.get_axis(i) for i in range(2))
    data = np.ascontiguousarray(np.asanyarray(image.dataobj)[back_and_forth(image.shape[0], frames)])
    dense = folder / f"rest_{frames}.dtseries.nii"
    header = (nib.cifti2.SeriesAxis(0.0, series_axis.step, frames, "SECOND"), brain_models)
    nib.Cifti2Image(data, header=header).to_filename(dense)
    real.unlink()
    paths = {"dense": str(dense)}
    if volume_frames:
        short = make_real_dtseries(folder / "short.dtseries.nii", min(volume_frames, BRAINSPACE_REST_FRAMES))
        paths["volume"] = str(make_real_volume(short, folder / f"rest_{volume_frames}_MNI2mm.nii"))
        short.unlink()
    return paths


def measure(method: str, paths: dict[str, str], repeats: int) -> dict:
    """Run one method `repeats` times in this process: time, memory, and its (T, R) output saved next to the data."""
    from mnemodyn_hf import MnemoDynFeatureExtractor
    from mnemodyn_hf.atlas import DEFAULT_ATLAS_FILES, ParcelAverager, load_atlas

    atlas = load_atlas()
    extractor = MnemoDynFeatureExtractor(do_resample=False, do_normalize=False)
    volume = method.endswith("_volume")
    path = paths["volume" if volume else "dense"]
    proxy = nib.load(path)
    if method == "parcel_averager":
        data = np.ascontiguousarray(np.asanyarray(proxy.dataobj))
        averager = ParcelAverager(atlas.cifti_labels, atlas.keys)
        run = lambda: averager(data)  # noqa: E731
    elif method == "nilearn_masker":
        from nilearn.maskers import NiftiLabelsMasker

        data = np.ascontiguousarray(np.asanyarray(proxy.dataobj))
        image = nib.Nifti1Image(data.T.reshape(data.shape[1], 1, 1, data.shape[0]), np.eye(4))
        labels = nib.Nifti1Image(np.asarray(atlas.cifti_labels, np.int32).reshape(-1, 1, 1), np.eye(4))
        run = lambda: NiftiLabelsMasker(labels, strategy="mean", standardize=None).fit_transform(image)  # noqa: E731
    elif method == "nilearn_masker_volume":
        from nilearn.maskers import NiftiLabelsMasker

        volume_atlas = str(DEFAULT_ATLAS_FILES["volume"])
        run = lambda: NiftiLabelsMasker(volume_atlas, strategy="mean", standardize=None).fit_transform(path)  # noqa: E731
    elif method in ("feature_extractor", "feature_extractor_volume"):
        run = lambda: extractor(path)["input_values"][0]  # noqa: E731
    else:
        raise ValueError(f"Unknown method {method!r}.")
    seconds, peak_kb, output = [], 0, None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nilearn's notices about its own defaults
        for _ in range(repeats):
            base = _reset_peak()
            start = time.perf_counter()
            output = run()
            seconds.append(time.perf_counter() - start)
            peak_kb = max(peak_kb, _memory_kb()[1] - base)
    output_path = Path(path).with_suffix(f".{method}.npy")
    np.save(output_path, np.asarray(output, np.float64))
    return _result(method, proxy.shape, min(seconds), peak_kb * 1024, method not in IN_MEMORY, output_path)


def _result(method: str, shape: tuple, seconds: float, peak_bytes: int, reads_input: bool, output: Path) -> dict:
    """One row; `peak_bytes` is the peak above the base, which holds the input only if the method read it itself."""
    input_bytes = int(np.prod(shape)) * 4  # float32
    return {
        "method": method,
        "input_shape": [int(n) for n in shape],
        "input_bytes": input_bytes,
        "seconds": seconds,
        "peak_above_base_bytes": peak_bytes,
        "total_over_input": (peak_bytes + (0 if reads_input else input_bytes)) / input_bytes,
        "output": str(output),
    }


def measure_wb_command(paths: dict[str, str], repeats: int) -> dict | None:
    """wb_command -cifti-parcellate from the file: wall time and its whole process's peak RSS (GNU time)."""
    wb_command, gnu_time = shutil.which("wb_command"), shutil.which("time") or "/usr/bin/time"
    if wb_command is None or not Path(gnu_time).exists():
        return None
    from mnemodyn_hf.atlas import DEFAULT_ATLAS_FILES

    out = Path(paths["dense"]).with_suffix(".wb.ptseries.nii")
    dlabel = str(DEFAULT_ATLAS_FILES["cifti"])
    command = [gnu_time, "-f", "%M", wb_command, "-cifti-parcellate", paths["dense"], dlabel, "COLUMN", str(out)]
    seconds, peak_kb = [], 0
    for _ in range(repeats):
        start = time.perf_counter()
        result = subprocess.run(command, check=True, capture_output=True, text=True)
        seconds.append(time.perf_counter() - start)
        peak_kb = max(peak_kb, int(result.stderr.strip().splitlines()[-1]))
    output_path = out.with_suffix(".npy")
    np.save(output_path, np.asanyarray(nib.load(out).dataobj).astype(np.float64))
    # its whole process's peak RSS, which holds the input it read
    return _result("wb_command", nib.load(paths["dense"]).shape, min(seconds), peak_kb * 1024, True, output_path)


def run(frames: int = 1200, volume_frames: int = 200, repeats: int = 3, folder: Path | None = None) -> dict:
    """Build the data, measure every method in a fresh subprocess, and compare outputs to the feature extractor's."""
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        paths = build_data(Path(tmp), frames, volume_frames)
        results = []
        methods = DENSE_METHODS + (VOLUME_METHODS if volume_frames else ())
        for method in methods:
            if method == "wb_command":
                result = measure_wb_command(paths, repeats)
                if result is not None:
                    results.append(result)
                continue
            command = [
                sys.executable,
                "-m",
                "benchmarks.bench_feature_extraction",
                "--measure",
                method,
                "--paths",
                json.dumps(paths),
                "--repeats",
                str(repeats),
            ]
            completed = subprocess.run(
                command, check=True, capture_output=True, text=True, cwd=Path(__file__).parent.parent
            )
            results.append(json.loads(completed.stdout.strip().splitlines()[-1]))
        outputs = {r["method"]: np.load(r.pop("output")) for r in results}
    for result in results:
        reference = outputs["feature_extractor_volume" if result["method"].endswith("_volume") else "feature_extractor"]
        result["max_abs_diff_vs_feature_extractor"] = float(np.abs(outputs[result["method"]] - reference).max())
    return {
        "date": date.today().isoformat(),
        "machine": machine_line(machine_description()),
        "load_average": os.getloadavg(),
        "frames": frames,
        "volume_frames": volume_frames,
        "repeats": repeats,
        "results": results,
    }


def format_table(report: dict) -> str:
    lines = [
        "| method | input | input (MB) | time (s) | peak above base (MB) | total / input | max abs diff vs extractor |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        lines.append(
            f"| {LABELS[r['method']]} | {' x '.join(map(str, r['input_shape']))} | {r['input_bytes'] / 1e6:.0f} | "
            f"{r['seconds']:.3f} | {r['peak_above_base_bytes'] / 1e6:.0f} | {r['total_over_input']:.2f} | "
            f"{r['max_abs_diff_vs_feature_extractor']:.1e} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=1200, help="frames of the dense series (default 1200)")
    parser.add_argument("--volume-frames", type=int, default=200, help="frames of the MNI volume; 0 skips it")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per method; the best is reported")
    parser.add_argument("--json", type=Path, help="also write the report as JSON")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: one method, in a fresh subprocess
    parser.add_argument("--paths", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, json.loads(args.paths), args.repeats)))
        return
    report = run(args.frames, args.volume_frames, args.repeats)
    print(f"{report['date']}, {report['machine']}, load average {report['load_average']}")
    print(format_table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
