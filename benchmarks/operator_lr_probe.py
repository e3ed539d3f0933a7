"""Does the wavelet operator learn more with its own, larger learning rate? (issue 14's per-parameter-group probe)

Runs `mnemodyn pretrain` with the given flags, except that the AdamW of the loop gets two parameter groups: the
operator (region convolutions and coarse mixers of every layer, `.operator.` in the name) at `--scale` times the
learning rate, everything else at the learning rate. The cosine schedule scales both groups alike. Nothing else
of the loop changes. Score the run as any other (docs/representations.md).

    python -m benchmarks.operator_lr_probe --scale 10 -- --corpus abide_A --output-dir r9 --mask-layout mixed ...
"""

from __future__ import annotations

import argparse

import torch

import mnemodyn_hf.training.loop as loop
from mnemodyn_hf.training import parse_arguments, pretrain


def grouped_adamw(scale: float, operator_parameters: set[int]):
    """An AdamW factory for the loop: same call, parameters split into other / operator (ids) groups."""
    adamw = torch.optim.AdamW

    def make(parameters, lr, **kwargs):
        parameters = list(parameters)
        groups = [
            {"params": [p for p in parameters if id(p) not in operator_parameters], "lr": lr},
            {"params": [p for p in parameters if id(p) in operator_parameters], "lr": lr * scale},
        ]
        sizes = [sum(p.numel() for p in group["params"]) for group in groups]
        print(f"AdamW groups: {sizes[0]:,} parameters at lr {lr:g}, {sizes[1]:,} operator parameters at {lr * scale:g}")
        return adamw(groups, lr=lr, **kwargs)

    return make


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, required=True, help="operator learning rate / learning rate")
    parser.add_argument("pretrain_flags", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    flags = args.pretrain_flags[1:] if args.pretrain_flags[:1] == ["--"] else args.pretrain_flags
    operator_parameters: set[int] = set()
    initial_model = loop.initial_model

    def initial_model_noting_the_operator(*arguments, **options):
        model = initial_model(*arguments, **options)
        operator_parameters.update(id(p) for name, p in model.named_parameters() if ".operator." in name)
        return model

    # this process only: the loop builds its model, then its one AdamW, through these names
    loop.initial_model = initial_model_noting_the_operator
    torch.optim.AdamW = grouped_adamw(args.scale, operator_parameters)
    pretrain(parse_arguments(flags))


if __name__ == "__main__":
    main()
