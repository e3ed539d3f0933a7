"""Keep the garbage collector's full collections off the objects a training loop finds alive when it starts.

CPython's cyclic collector runs a full collection once the objects promoted to its oldest generation since the last
full one reach a quarter of those already there. Imports and set-up (torch, transformers, datasets, Accelerate, the
model and its optimizer) leave hundreds of thousands of tracked objects, and a training step's temporaries promote
enough objects to trigger a full collection every few steps, each walking all of them: a pause of a good fraction of
a small batch's step. `frozen_setup_objects` collects once, moves every object then alive into the collector's
permanent generation (`gc.freeze`) for the duration of the block and puts them back on exit (`gc.unfreeze`), so the
collections inside walk only what the loop itself created. Objects are still freed by reference counting; what the
block does not do is look for reference cycles among the set-up objects until it ends. A freeze the caller made
before the block is left in place. `MNEMODYN_FREEZE_SETUP_OBJECTS=0` turns it off.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Iterator

VARIABLE = "MNEMODYN_FREEZE_SETUP_OBJECTS"


@contextlib.contextmanager
def frozen_setup_objects() -> Iterator[bool]:
    """Freeze the objects alive now for the block (see the module docstring); yields whether it did."""
    if os.environ.get(VARIABLE, "1").strip().lower() in {"0", "false", "no", "off"}:
        yield False
        return
    frozen_by_caller = gc.get_freeze_count() > 0
    gc.collect()
    gc.freeze()
    try:
        yield True
    finally:
        if not frozen_by_caller:
            gc.unfreeze()


__all__ = ["VARIABLE", "frozen_setup_objects"]
