"""Paired comparisons from `mnemodyn evaluate` folders, within one report and across two on the same folds."""

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.paired_comparison import _pair, compare


def _report(folder, scores):
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps({"task_type": "classification"}))
    rng = np.random.default_rng(0)
    labels = np.tile([0, 1], 20)
    table = pd.DataFrame({"unit": [f"s{i}" for i in range(40)], "fold": np.repeat(["A", "B", "C", "D"], 10),
                          "group": np.repeat(["A", "B", "C", "D"], 10), "label": labels})  # fmt: skip
    for name, strength in scores.items():
        table[name] = labels * strength + rng.normal(size=40)
    table.to_csv(folder / "predictions.csv", index=False)


def test_a_second_report_is_matched_on_unit_and_fold(tmp_path):
    _report(tmp_path / "a", {"probe": 3.0})
    _report(tmp_path / "b", {"probe": 0.0})
    (row,) = compare(tmp_path / "a", [("probe", "other:probe")], num=200, other=tmp_path / "b")
    assert row["difference"] > 0.3 and row["unit"] == "group" and row["num_units"] == 4
    _report(tmp_path / "c", {"probe": 0.0})
    pd.read_csv(tmp_path / "c" / "predictions.csv").iloc[:30].to_csv(tmp_path / "c" / "predictions.csv", index=False)
    with pytest.raises(ValueError, match="do not score the same units and folds"):
        compare(tmp_path / "a", [("probe", "other:probe")], other=tmp_path / "c")


def test_pairs_keep_the_other_prefix_with_its_method():
    assert _pair("a:b") == ("a", "b")
    assert _pair("a:other:a") == ("a", "other:a")
    assert _pair("other:a:b") == ("other:a", "b")
    with pytest.raises(SystemExit):
        _pair("a:b:c")
