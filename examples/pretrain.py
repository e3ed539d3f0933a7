"""Pretrain MnemoDyn with Accelerate; the same options as `mnemodyn pretrain --help`.

python examples/pretrain.py --output-dir runs/masked --max-steps 300              # one process
ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 examples/pretrain.py --output-dir runs/ddp
accelerate launch --multi_gpu --num_processes 8 examples/pretrain.py --config pretrain.json
"""

import sys

from mnemodyn_hf.training import parse_arguments, pretrain

if __name__ == "__main__":
    folder = pretrain(parse_arguments(sys.argv[1:]))
    print(f"model folder: {folder}; upload it with `mnemodyn push {folder} ORG/NAME`")
