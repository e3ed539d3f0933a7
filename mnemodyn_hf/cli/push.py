"""`mnemodyn push FOLDER NAMESPACE/NAME`: upload a Hub-ready folder."""

from __future__ import annotations

import argparse

HELP = "upload a Hub-ready folder to the Hugging Face Hub (create_repo + upload_folder)"
DESCRIPTION = (
    "Checks the folder (config with auto_map, safetensors, modeling code, a valid card, no pickles), creates the "
    "repo if needed and uploads it. Needs a token: `hf auth login` or HF_TOKEN."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("folder")
    parser.add_argument("repo_id", help="namespace/name, e.g. my-lab/mnemodyn-ukb")
    parser.add_argument("--private", action="store_true", help="create the repo as private")
    parser.add_argument("--token", help="a Hub token (default: the logged-in one)")


def run(args: argparse.Namespace) -> None:
    from ..hub import push_folder

    url = push_folder(args.folder, args.repo_id, private=args.private, token=args.token)
    print(f"uploaded {args.folder} to {args.repo_id}: {url}")
