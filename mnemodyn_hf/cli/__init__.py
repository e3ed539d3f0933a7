"""The `mnemodyn` command line: one module per command, each an `add_arguments(parser)` / `run(args)` pair that
calls the library (the demo calls the same functions).

    mnemodyn demo                            # the main job on real offline fMRI: pretrain, save, reload, evaluate
    mnemodyn parcellate FILES -o DIR         # NIfTI / CIFTI -> 450-ROI tables (TSV + JSON sidecar)
    mnemodyn embed MODEL FILES -o OUT.npz    # fMRI files -> pooled MnemoDyn embeddings
    mnemodyn pretrain --output-dir D         # pretraining with Accelerate (see `mnemodyn pretrain --help`)
    mnemodyn evaluate BACKBONE --task T -o D # linear probe, head, fine-tuning beside FC and random baselines
    mnemodyn convert CKPT OUTPUT_DIR         # the authors' checkpoint -> a Hub-ready folder
    mnemodyn card FOLDER                     # write or refresh a folder's model card from its metrics
    mnemodyn push FOLDER NAMESPACE/NAME      # upload a Hub-ready folder

Commands print progress bars and one summary; `-v` adds the libraries' own messages and warnings.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import card, convert, demo, embed, evaluate, parcellate, pretrain, push
from .verbosity import quiet_libraries

#: command name -> module with HELP, DESCRIPTION, add_arguments and run (the order of `mnemodyn --help`)
COMMANDS = {
    "demo": demo,
    "parcellate": parcellate,
    "embed": embed,
    "pretrain": pretrain,
    "evaluate": evaluate,
    "convert": convert,
    "card": card,
    "push": push,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mnemodyn",
        description="MnemoDyn for Hugging Face: an attention-free foundation model for parcellated fMRI.",
        epilog="A typical path:\n"
        + "\n".join(__doc__.splitlines()[3:11])
        + "\n`mnemodyn COMMAND --help` explains each.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the libraries' messages and warnings")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        command = commands.add_parser(name, help=module.HELP, description=module.DESCRIPTION)
        command.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    with quiet_libraries(enabled=not args.verbose):
        args.run(args)


if __name__ == "__main__":
    main(sys.argv[1:])
