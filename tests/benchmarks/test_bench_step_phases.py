import math

import pytest

from benchmarks.bench_step_phases import PHASES, format_table, split_by_batch


def _phases(forward: float, backward: float, optimizer: float, zero_grad: float) -> dict:
    values = dict(zip(PHASES, (forward, backward, optimizer, zero_grad)))
    return {**values, "step": sum(values.values())}


def test_each_phase_splits_into_a_per_sequence_slope_and_a_fixed_intercept():
    seconds = {"mnemodyn": {"1": _phases(0.2, 0.4, 0.1, 0.03), "4": _phases(0.5, 1.3, 0.1, 0.03)}}
    split = split_by_batch(seconds, 1, 4)["mnemodyn"]
    assert split["forward"]["per_sequence"] == pytest.approx(0.1)
    assert split["forward"]["fixed"] == pytest.approx(0.1)
    assert split["backward"]["per_sequence"] == pytest.approx(0.3)
    assert split["optimizer"] == pytest.approx({"per_sequence": 0.0, "fixed": 0.1})
    assert split["step"]["per_sequence"] == pytest.approx(0.4)
    assert split["step"]["fixed"] == pytest.approx(0.33)
    for phase in (*PHASES, "step"):  # the split reproduces both measured batches
        for batch in (1, 4):
            rebuilt = split[phase]["fixed"] + batch * split[phase]["per_sequence"]
            assert math.isclose(rebuilt, seconds["mnemodyn"][str(batch)][phase], abs_tol=1e-12)
    report = {"seconds": seconds, "split": split_by_batch(seconds, 1, 4)}
    assert format_table(report).splitlines()[-1] == (
        "| mnemodyn | per sequence + fixed | 0.100 + 0.100 | 0.300 + 0.100 | 0.000 + 0.100 | 0.000 + 0.030 | "
        "0.400 + 0.330 |"
    )
