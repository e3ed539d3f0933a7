"""Atomic training checkpoints: a checkpoint folder either is complete or does not exist under its final name.

`accelerator.save_state` writes into a staging folder `.staging-checkpoint-<step>`; once every process has
finished, the main process fsyncs every file and the folder, renames it to `checkpoint-<step>` (a single atomic
`rename` on POSIX file systems) and fsyncs the parent. A crash or kill at any point leaves either the previous
checkpoints only (plus a staging folder that nothing loads and the next save clears) or the new complete one.
Multi-node runs need `checkpoints/` on a file system shared by all nodes.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from accelerate import Accelerator

from ..atomic_files import STAGING_PREFIX, fsync_directory, fsync_tree

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")


def checkpoint_name(step: int) -> str:
    """Folder name of the checkpoint after optimizer step `step`."""
    return f"checkpoint-{step:08d}"


def list_checkpoints(checkpoints_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints in `checkpoints_dir`, oldest step first (staging folders are never listed)."""
    folder = Path(checkpoints_dir)
    if not folder.is_dir():
        return []
    found = [(int(match.group(1)), path) for path in folder.iterdir() if (match := CHECKPOINT_PATTERN.match(path.name))]
    return [path for _, path in sorted(found)]


def latest_checkpoint(checkpoints_dir: str | os.PathLike) -> Path | None:
    """The complete checkpoint with the highest step, or None."""
    checkpoints = list_checkpoints(checkpoints_dir)
    return checkpoints[-1] if checkpoints else None


def save_checkpoint_atomically(
    accelerator: Accelerator, checkpoints_dir: str | os.PathLike, step: int, keep: int
) -> Path:
    """`accelerator.save_state` for step `step`, published atomically; keeps the newest `keep` checkpoints.

    Call on every process (as `save_state`). Returns the checkpoint folder.
    """
    folder = Path(checkpoints_dir)
    final = folder / checkpoint_name(step)
    staging = folder / f"{STAGING_PREFIX}{final.name}"
    if accelerator.is_main_process:
        folder.mkdir(parents=True, exist_ok=True)
        for leftover in folder.glob(f"{STAGING_PREFIX}*"):  # from a save that was killed
            shutil.rmtree(leftover)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(staging))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        fsync_tree(staging)
        if final.exists():  # the same step saved again after a resume: move the old copy out of the way first
            replaced = folder / f"{STAGING_PREFIX}replaced-{final.name}"
            final.rename(replaced)
            staging.rename(final)
            shutil.rmtree(replaced)
        else:
            staging.rename(final)
        fsync_directory(folder)
        for old in list_checkpoints(folder)[:-keep]:
            shutil.rmtree(old)
        fsync_directory(folder)
    accelerator.wait_for_everyone()
    return final


__all__ = ["checkpoint_name", "latest_checkpoint", "list_checkpoints", "save_checkpoint_atomically"]
