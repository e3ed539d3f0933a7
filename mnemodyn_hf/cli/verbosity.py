"""What the terminal shows: progress bars and each command's summary; `-v` adds the libraries' own log messages and
this package's (e.g. why the fused kernel fell back to the PyTorch path)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_libraries(enabled: bool = True) -> Iterator[None]:
    """Lower transformers' and datasets' loggers to errors and hide transformers' own loading / saving bars while
    the block runs (restored after); the commands' progress bars stay. Warnings a command expects are handled
    where they arise, never filtered here. With `enabled=False` (`-v`), this package's INFO messages go to stderr."""
    if not enabled:
        with _package_messages():
            yield
        return
    import datasets
    import transformers

    levels = (transformers.logging.get_verbosity(), datasets.logging.get_verbosity())
    bars = transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    datasets.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(levels[0])
        datasets.logging.set_verbosity(levels[1])
        if bars:
            transformers.logging.enable_progress_bar()


@contextlib.contextmanager
def _package_messages() -> Iterator[None]:
    """Show the `mnemodyn_hf` loggers' INFO messages on stderr while the block runs."""
    logger = logging.getLogger("mnemodyn_hf")
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


__all__ = ["quiet_libraries"]
