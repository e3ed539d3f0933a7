"""Matplotlib for the figures (optional: `pip install 'mnemodyn-hf[plots]'`), with a headless backend."""

from __future__ import annotations

from types import ModuleType

PLOTS_EXTRA_HINT = "install the plots extra for figures: pip install 'mnemodyn-hf[plots]' (matplotlib)"


def plots_available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def pyplot() -> ModuleType:
    """`matplotlib.pyplot` on the Agg backend.

    Raises:
        ImportError: matplotlib is not installed, naming the extra that adds it.
    """
    try:
        import matplotlib
    except ImportError as error:
        raise ImportError(f"matplotlib is missing: {PLOTS_EXTRA_HINT}.") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


__all__ = ["PLOTS_EXTRA_HINT", "plots_available", "pyplot"]
