"""Pretrain MnemoDyn with Accelerate; the same options as `mnemodyn pretrain --help`.

    python examples/pretrain.py --output-dir runs/masked --max-steps 300              # one process
    accelerate launch --num_processes 2 --cpu examples/pretrain.py --output-dir runs/ddp
    accelerate launch --multi_gpu --num_processes 8 examples/pretrain.py --config pretrain.json
"""

import sys

from mnemodyn_hf.pretraining import main

if __name__ == "__main__":
    main(sys.argv[1:])
