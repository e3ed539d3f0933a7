"""Where the shared development cohorts live: a path the user gives, or `MNEMODYN_SHARED_DATA`.

The shared data folder holds one subfolder per cohort (`abide_dev/`, `rpn_signature/`, `hcp_aal2/`). It is never
copied into the project or a model upload, and never looked up at a hard-coded location: callers pass `--data PATH`
or set `MNEMODYN_SHARED_DATA=/path/to/shared/data`. The loaders (`load_abide_pcp`, `load_rpn_signature`,
`load_hcp_aal2`) take the cohort folder itself; `shared_data_dir` turns "a path or the environment" into that
folder.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Environment variable naming the folder that contains `abide_dev/`, `rpn_signature/` and `hcp_aal2/`.
SHARED_DATA_ENV = "MNEMODYN_SHARED_DATA"


def shared_data_dir(path: str | os.PathLike | None, subfolder: str) -> Path:
    """The cohort folder: `Path(path)` when given, else `$MNEMODYN_SHARED_DATA / subfolder`.

    Args:
        path: the cohort folder itself (e.g. `.../abide_dev`), typically a `--data` argument; None to use the
            environment variable.
        subfolder: the cohort's folder inside the shared data folder, e.g. `"abide_dev"` or `"rpn_signature"`.

    Raises:
        ValueError: neither `path` nor `MNEMODYN_SHARED_DATA` is set; the message says how to set either.
    """
    if path is not None:
        return Path(path)
    root = os.environ.get(SHARED_DATA_ENV)
    if not root:
        raise ValueError(
            f"No data folder for {subfolder!r}: pass `--data PATH` (the {subfolder}/ folder itself) or set "
            f"`{SHARED_DATA_ENV}=/path/to/shared/data` (the folder that contains {subfolder}/)."
        )
    return Path(root) / subfolder


__all__ = ["SHARED_DATA_ENV", "shared_data_dir"]
