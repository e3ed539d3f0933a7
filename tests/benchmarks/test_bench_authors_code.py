import pytest

from benchmarks.bench_authors_code import format_table, import_authors_model


def test_the_table_gives_each_ratio_from_the_same_round():
    report = {
        "rows": [
            {"batch": 1, "mode": "train_step", "seconds": {"authors": 5.0, "literal_port": 4.0, "default": 0.5}},
        ]
    }
    assert format_table(report).splitlines()[2] == "| 1 | train_step | 5.000 | 4.000 | 0.500 | 1.25x | 10.00x | 8.00x |"


def test_a_folder_without_the_authors_model_is_refused_with_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="coe/light/model folder of a MnemoDyn_Draft checkout"):
        import_authors_model(tmp_path)


def test_the_authors_modules_load_as_a_package_from_any_folder(tmp_path, monkeypatch):
    # relative imports, as in their orion.py; no __init__.py needed
    (tmp_path / "dense_layer.py").write_text("WIDTH = 3\n")
    (tmp_path / "orion.py").write_text("from .dense_layer import WIDTH\n")
    monkeypatch.delitem(__import__("sys").modules, "authors_model", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "authors_model.orion", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "authors_model.dense_layer", raising=False)
    assert import_authors_model(tmp_path).WIDTH == 3
