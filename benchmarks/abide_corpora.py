"""ABIDE pretraining corpora for the pretraining studies: the runs of some sites, resampled to one TR, optionally a
random subset of subjects, saved with `Dataset.save_to_disk` for `mnemodyn pretrain --corpus`.

    python -m benchmarks.abide_corpora --data ../shared/data/abide_dev --out corpora/abide_A --subjects 100

The default sites (`PRETRAINING_SITES`, 211 subjects: KKI, MAX_MUN, UCLA_1, UCLA_2) leave the other six site
groups (215 subjects: LEUVEN_1/2, OHSU, OLIN, PITT, SBL) for evaluation on subjects never pretrained on: the
harness drops every subject listed in a model's `pretraining_subjects.json`.
"""

from __future__ import annotations

import argparse

import numpy as np

from mnemodyn_hf.data import load_abide_pcp, resample_runs

PRETRAINING_SITES = ("KKI", "MAX_MUN", "UCLA_1", "UCLA_2")
COLUMNS = ["bold", "tr", "subject", "session", "run", "site", "path"]


def build(data: str, out: str, sites=PRETRAINING_SITES, subjects: int | None = None, seed: int = 0, tr: float = 2.0):
    """Save the corpus; returns its number of subjects."""
    runs = load_abide_pcp(data, sites=list(sites)).select_columns(COLUMNS)
    names = sorted(set(runs["subject"]))
    if subjects is not None and subjects < len(names):
        chosen = set(np.random.default_rng(seed).choice(names, size=subjects, replace=False).tolist())
        runs = runs.filter(lambda subject: subject in chosen, input_columns="subject")
    resample_runs(runs, tr).save_to_disk(out)
    return len(set(runs["subject"]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="the abide_dev folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--sites", nargs="+", default=list(PRETRAINING_SITES))
    parser.add_argument("--subjects", type=int, help="a random subset of this many subjects")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tr", type=float, default=2.0)
    args = parser.parse_args(argv)
    count = build(args.data, args.out, args.sites, args.subjects, args.seed, args.tr)
    print(f"{args.out}: {count} subjects of {args.sites} at TR {args.tr} s")


if __name__ == "__main__":
    main()
