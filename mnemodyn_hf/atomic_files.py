"""Atomic file writes: a crash leaves either the old file (or folder) or the new one, never a truncated one."""

from __future__ import annotations

import os
from pathlib import Path

#: Prefix of the temporary names that files and checkpoint folders are written under before their atomic rename.
STAGING_PREFIX = ".staging-"


def fsync_tree(folder: Path) -> None:
    """Flush every file under `folder`, then the folders themselves, to stable storage."""
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_directory(Path(root))


def fsync_directory(folder: Path) -> None:
    """Flush a folder's entries (creations, renames) to stable storage."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_file_atomically(path: str | os.PathLike, content: str | bytes) -> Path:
    """Write `content` (text as UTF-8) to `path` through a temporary file in the same folder and an atomic rename:
    a crash leaves either the old file or the new one, never a truncated one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f"{STAGING_PREFIX}{path.name}.{os.getpid()}")
    with open(staging, "wb") as handle:
        handle.write(content.encode("utf-8") if isinstance(content, str) else content)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(staging, path)
    fsync_directory(path.parent)
    return path


__all__ = ["STAGING_PREFIX", "fsync_directory", "fsync_tree", "write_file_atomically"]
