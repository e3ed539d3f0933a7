"""Task registry: where the reconstruction tasks find their data."""

from __future__ import annotations

import pytest

from mnemodyn_hf.evaluation.tasks import RECONSTRUCTION_TASKS


def test_hcp_aal2_reconstruction_reads_data_or_the_shared_folder(shared_data, monkeypatch):
    load = RECONSTRUCTION_TASKS["hcp-aal2-reconstruction"].load
    if not (shared_data / "hcp_aal2").is_dir():
        pytest.skip(f"no hcp_aal2/ in {shared_data}")
    runs = load(str(shared_data / "hcp_aal2"))
    assert len(runs) == 18 and runs.features["bold"].shape == (None, 94)
    monkeypatch.setenv("MNEMODYN_SHARED_DATA", str(shared_data))
    assert sorted(load(None)["subject"]) == sorted(runs["subject"])


def test_hcp_aal2_reconstruction_without_a_folder_says_how_to_give_one(monkeypatch):
    monkeypatch.delenv("MNEMODYN_SHARED_DATA", raising=False)
    with pytest.raises(ValueError, match=r"--data PATH.*hcp_aal2.*MNEMODYN_SHARED_DATA"):
        RECONSTRUCTION_TASKS["hcp-aal2-reconstruction"].load(None)
