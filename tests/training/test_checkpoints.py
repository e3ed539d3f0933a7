import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState

from mnemodyn_hf.training.checkpoints import latest_checkpoint, list_checkpoints, save_checkpoint_atomically


@pytest.fixture
def accelerator():
    yield Accelerator(cpu=True)
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def test_checkpoints_are_published_by_rename_pruned_and_reloadable(accelerator, tmp_path):
    model = accelerator.prepare(torch.nn.Linear(3, 2))
    folder = tmp_path / "checkpoints"
    (folder / ".staging-checkpoint-00000009").mkdir(parents=True)  # a save that was killed earlier
    (folder / "checkpoint-notes").mkdir()
    saved = {}
    for step in (1, 2, 3):
        with torch.no_grad():
            model.weight.fill_(step)
        saved[step] = save_checkpoint_atomically(accelerator, folder, step, keep=2)
    assert [path.name for path in list_checkpoints(folder)] == ["checkpoint-00000002", "checkpoint-00000003"]
    assert latest_checkpoint(folder) == saved[3]
    assert not list(folder.glob(".staging-*"))
    with torch.no_grad():
        model.weight.fill_(7)
    save_checkpoint_atomically(accelerator, folder, 3, keep=2)  # the same step again replaces it
    accelerator.load_state(str(saved[2]))
    assert torch.all(model.weight == 2)
    accelerator.load_state(str(saved[3]))
    assert torch.all(model.weight == 7)


def test_no_checkpoint_folder_means_no_latest(tmp_path):
    assert latest_checkpoint(tmp_path / "missing") is None
    (tmp_path / ".staging-checkpoint-00000001").mkdir()
    assert latest_checkpoint(tmp_path) is None
