"""Score a backbone on the redesigned heat-vs-rest task beside its baselines, on real task fMRI that installs offline.

    python examples/finetune.py path/to/mnemodyn-backbone   # a saved MnemoDyn folder with 122 ROIs (MIST), TR 2 s

Same as `mnemodyn evaluate BACKBONE --task connattractor-heat -o eval/connattractor-heat`: event-locked heat and
inter-trial rest epochs, 5 folds by subject, linear probe / frozen head / full fine-tuning beside FC, the pooled input
and a random backbone, and the position-only and signal-spread controls (docs/evaluation.md).
"""

import sys

from mnemodyn_hf.cli import main

if __name__ == "__main__":
    main(["evaluate", sys.argv[1], "--task", "connattractor-heat", "-o", "eval/connattractor-heat", *sys.argv[2:]])
