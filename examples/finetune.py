"""Frozen-backbone fine-tuning with the honest protocol, on real task fMRI that installs offline.

    python examples/finetune.py path/to/mnemodyn-backbone   # a saved MnemoDyn folder with 122 ROIs (MIST)

Same as `mnemodyn finetune`: connattractor heat vs rest windows, subject-level splits for 3 seeds, model selection
on validation only, the test split scored once in eval mode, and the Fisher-z FC baseline on the same splits.
"""

import sys

from mnemodyn_hf.cli import main

if __name__ == "__main__":
    main(["finetune", *sys.argv[1:]])
