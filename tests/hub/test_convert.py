import pickle
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModel

from mnemodyn_hf import MnemoDynModel
from mnemodyn_hf.hub.convert import (
    ReferenceCheckpointError,
    convert_reference_checkpoint,
)
from tests.conftest import PARITY_TOLERANCE, REFERENCE_PARITY

FIXTURES = ["ref_small_t64", "ref_small_t50"]


def _reference(name):
    return load_file(REFERENCE_PARITY / f"{name}_io.safetensors")


@pytest.mark.parametrize("field_implementation", ["auto", "eager"])  # the fused CPU kernel where it builds; PyTorch
@pytest.mark.parametrize("name", FIXTURES)
def test_converted_checkpoint_reproduces_the_reference(name, field_implementation, tmp_path):
    convert_reference_checkpoint(REFERENCE_PARITY / f"{name}.ckpt", tmp_path / name)
    model = AutoModel.from_pretrained(tmp_path / name, field_implementation=field_implementation).eval()
    assert isinstance(model, MnemoDynModel) and model.config.reference_compatible
    assert model.layers[0].velocity_field.implementation == field_implementation
    io = _reference(name)
    with torch.no_grad():
        out = model(io["input"], output_hidden_states=True)
    # The first layer alone is float32-exact; the stack amplifies rounding (later layers multiply differences
    # by T), and float32 vs float64 runs of the same weights already differ by ~1e-4 (see PARITY_TOLERANCE).
    layer0 = out.hidden_states[1] - io["input"]
    assert (layer0 - io["layer0_output"]).abs().max() < 1e-5
    assert (out.last_hidden_state - io["output"]).abs().max() < PARITY_TOLERANCE


@pytest.mark.parametrize("name", FIXTURES)
def test_converted_folder_round_trips_bit_exactly(name, tmp_path):
    convert_reference_checkpoint(REFERENCE_PARITY / f"{name}.ckpt", tmp_path / "first")
    first = AutoModel.from_pretrained(tmp_path / "first").eval()
    first.save_pretrained(tmp_path / "second")
    second = AutoModel.from_pretrained(tmp_path / "second").eval()
    assert AutoConfig.from_pretrained(tmp_path / "second").to_diff_dict() == first.config.to_diff_dict()
    for (key, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), key
    x = _reference(name)["input"]
    with torch.no_grad():
        assert torch.equal(first(x).last_hidden_state, second(x).last_hidden_state)


def test_command_line_entry_point(tmp_path, capsys):
    from mnemodyn_hf.cli import main

    main(["convert", str(REFERENCE_PARITY / "ref_small_t64.ckpt"), str(tmp_path / "mnemodyn-ukb")])
    assert (tmp_path / "mnemodyn-ukb" / "config.json").is_file()
    assert (tmp_path / "mnemodyn-ukb" / "model.safetensors").is_file()
    assert "2 layers" in capsys.readouterr().out


def test_truncated_checkpoint_is_reported_as_corrupt(tmp_path):
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes((REFERENCE_PARITY / "ref_small_t64.ckpt").read_bytes()[:5000])
    with pytest.raises(ReferenceCheckpointError, match="corrupt or truncated"):
        convert_reference_checkpoint(broken)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.ckpt").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        convert_reference_checkpoint(tmp_path / "empty.ckpt")
    with pytest.raises(ValueError, match="no such checkpoint"):
        convert_reference_checkpoint(tmp_path / "absent.ckpt")


def test_wrong_format_is_named(tmp_path):
    shutil.copy(REFERENCE_PARITY / "ref_small_t64_io.safetensors", tmp_path / "weights.ckpt")
    with pytest.raises(ReferenceCheckpointError):
        convert_reference_checkpoint(tmp_path / "weights.ckpt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "plain.ckpt")
    with pytest.raises(ReferenceCheckpointError, match="'state_dict' and 'hyper_parameters'"):
        convert_reference_checkpoint(tmp_path / "plain.ckpt")
    torch.save({"state_dict": {"encoder.weight": torch.zeros(2)}, "hyper_parameters": {}}, tmp_path / "other.ckpt")
    with pytest.raises(ReferenceCheckpointError, match="not a MnemoDyn reference checkpoint"):
        convert_reference_checkpoint(tmp_path / "other.ckpt")


class _Payload:
    """Unpickling this would create a marker file: the converter must never do it."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_pickled_objects_are_refused_not_executed(tmp_path):
    marker = tmp_path / "executed"
    evil = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "callback": _Payload(marker)}, evil, pickle_module=pickle)
    with pytest.raises(ReferenceCheckpointError, match="weights_only=True"):
        convert_reference_checkpoint(evil)
    assert not marker.exists()


def test_unsupported_hyper_parameters_are_named(tmp_path):
    checkpoint = torch.load(REFERENCE_PARITY / "ref_small_t64.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["scale"] = True
    torch.save(checkpoint, tmp_path / "scaled.ckpt")
    with pytest.raises(ReferenceCheckpointError, match="scale=True"):
        convert_reference_checkpoint(tmp_path / "scaled.ckpt")
    checkpoint["hyper_parameters"]["scale"] = False
    checkpoint["state_dict"]["model.layers.0.wavelet_processor.forward_wavelet.h0"] *= 2
    torch.save(checkpoint, tmp_path / "filters.ckpt")
    with pytest.raises(ReferenceCheckpointError, match="PyWavelets 'db2' filter"):
        convert_reference_checkpoint(tmp_path / "filters.ckpt")
