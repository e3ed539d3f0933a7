"""`python -m mnemodyn_hf.training [options]`: the entry point for `accelerate launch` (same options as
`mnemodyn pretrain`)."""

import sys

from .arguments import parse_arguments
from .loop import pretrain

if __name__ == "__main__":
    pretrain(parse_arguments(sys.argv[1:]))
