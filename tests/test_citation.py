"""CITATION.cff is valid Citation File Format 1.2 (checked with cffconvert, the format's reference validator)."""

from pathlib import Path

import jsonschema
import pytest
import yaml
from cffconvert import Citation

CITATION = Path(__file__).resolve().parents[1] / "CITATION.cff"


def test_citation_file_validates_against_the_cff_1_2_schema():
    text = CITATION.read_text()
    Citation(text).validate()
    data = yaml.safe_load(text)
    assert data["cff-version"] == "1.2.0"
    assert "zexMILcQOV" in data["preferred-citation"]["url"]  # the paper is the preferred citation


def test_the_validator_rejects_a_citation_without_authors():
    broken = "\n".join(line for line in CITATION.read_text().splitlines() if "mnemodyn_hf developers" not in line)
    with pytest.raises(jsonschema.ValidationError):
        Citation(broken).validate()


def test_the_package_version_matches_pyproject():
    import tomllib

    project = tomllib.loads((CITATION.parent / "pyproject.toml").read_text())["project"]
    assert yaml.safe_load(CITATION.read_text())["version"] == project["version"]
