"""Fixtures of the evaluation tests: a small real ABIDE cohort and a tiny 200-ROI backbone folder."""

import pytest
import torch

from mnemodyn_hf import MnemoDynFeatureExtractor, MnemoDynModel
from tests.conftest import tiny_config

#: Three ABIDE sites with both classes and both sexes, 116 subjects: small enough for a test, real enough to fail.
TEST_SITES = ("OHSU", "OLIN", "SBL")


@pytest.fixture(scope="session")
def abide_small(shared_data):
    from mnemodyn_hf.data import load_abide_pcp

    return load_abide_pcp(shared_data / "abide_dev", sites=TEST_SITES)


#: The ABIDE site whose runs give the test backbone its normalization statistics (never a test site).
STATISTICS_SITE = "PITT"


@pytest.fixture(scope="session")
def backbone_200(tmp_path_factory, shared_data):
    """A randomly initialized 200-ROI backbone at TR 2 s, saved like a pretrained one: with a feature extractor
    whose robust-scaling statistics come from another site's runs than the test sites'."""
    from mnemodyn_hf.data import load_abide_pcp

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("backbone") / "model"
    MnemoDynModel(tiny_config(num_rois=200, repetition_time=2.0, context_length=32)).save_pretrained(folder)
    runs = load_abide_pcp(shared_data / "abide_dev", sites=(STATISTICS_SITE,)).with_format("numpy")
    assert set(runs["tr"]) == {1.5}  # one TR per site: the runs are resampled from it to the backbone's 2 s
    extractor = MnemoDynFeatureExtractor.for_rois(200, 2.0).fit(list(runs["bold"]), repetition_time=1.5)
    extractor.save_pretrained(folder)
    return folder
