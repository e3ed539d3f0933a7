import json

import torch

from benchmarks import bench_backbone
from benchmarks.reference_port import literal_port_of
from mnemodyn_hf import MnemoDynModel
from tests.conftest import tiny_config


def test_literal_port_computes_the_same_function_as_the_model():
    """The benchmark baseline is only fair if it computes what the model computes (float64: no rounding noise)."""
    torch.manual_seed(0)
    model = MnemoDynModel(tiny_config(reference_compatible=True)).double().eval()
    port = literal_port_of(model).eval()
    x = torch.randn(2, 64, 12, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(port(x), model(x).last_hidden_state, atol=1e-9)


def test_benchmark_runs_at_tiny_size_and_writes_json(tmp_path):
    report = bench_backbone.run(size="tiny", batch=2, frames=64, repeats=1, modes=("train_step",))
    path = tmp_path / "report.json"
    path.write_text(json.dumps(report))
    loaded = json.loads(path.read_text())
    assert {r["implementation"] for r in loaded["results"]} == set(bench_backbone.IMPLEMENTATIONS)
    assert loaded["ratios"]["train_step"]["speedup"] > 0
    assert all(r["seconds"] > 0 and r["parameters"] > 0 for r in loaded["results"])
    assert "train_step" in bench_backbone.format_table(loaded)
