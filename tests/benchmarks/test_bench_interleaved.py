import time

import torch

from benchmarks.bench_backbone import SIZES, build
from benchmarks.bench_interleaved import format_table, step_function


def test_ratios_are_printed_against_the_port_and_the_eager_path():
    seconds = {"literal_reference_port": 6.0, "mnemodyn_eager": 2.0, "mnemodyn": 1.0}
    report = {
        "seconds": {"forward": seconds},
        "ratios": {"forward": {"default_vs_literal": 6.0, "eager_vs_literal": 3.0, "default_vs_eager": 2.0}},
    }
    assert format_table(report).splitlines()[-1] == "| forward | 6.000 | 2.000 | 1.000 | 6.00x | 3.00x | 2.00x |"


def test_the_training_step_updates_the_weights_and_returns_its_optimizer_seconds():
    model = build("mnemodyn", "tiny", torch.device("cpu"))
    x = torch.randn(1, 64, SIZES["tiny"]["num_rois"], generator=torch.Generator().manual_seed(0))
    before = [p.detach().clone() for p in model.parameters()]
    assert step_function(model, x, "forward")() is None
    assert all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    train = step_function(model, x, "train_step")
    start = time.perf_counter()
    optimizer_seconds = train()
    assert 0 < optimizer_seconds < time.perf_counter() - start
    assert not all(torch.equal(a, p) for a, p in zip(before, model.parameters()))
    assert all(p.grad is None for p in model.parameters())  # zero_grad(set_to_none=True) ran inside the timing
