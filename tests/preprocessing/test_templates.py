"""Template spaces: an image whose `space-` entity is not its atlas's gets a warning naming what to use."""

from __future__ import annotations

import os
import warnings

import pytest

from mnemodyn_hf import MnemoDynFeatureExtractor
from mnemodyn_hf.preprocessing.templates import warn_on_template_mismatch

SHIPPED = {"cifti": "fsLR", "volume": "MNI152NLin6Asym"}


def test_a_volume_in_another_template_warns_and_names_the_fix(fmriprep_derivatives, tmp_path):
    volume = fmriprep_derivatives / "sub-01/func/sub-01_task-rest_space-MNI152NLin6Asym_res-2_desc-preproc_bold.nii.gz"
    other = tmp_path / "sub-01_task-rest_space-MNI152NLin2009cAsym_res-2_desc-preproc_bold.nii.gz"
    os.symlink(volume, other)
    extractor = MnemoDynFeatureExtractor(do_normalize=False, do_resample=False)
    with pytest.warns(UserWarning, match=r"space 'MNI152NLin2009cAsym' .* atlas's volume form is in 'MNI152NLin6Asym'"):
        extractor.roi_series(other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the atlas's own template: no warning
        extractor.roi_series(volume)


@pytest.mark.parametrize(
    "name, form, warns",
    [
        ("sub-01_space-fsaverage_bold.dtseries.nii", "cifti", True),
        ("sub-01_space-fsLR_den-91k_bold.dtseries.nii", "cifti", False),
        ("sub-01_space-T1w_desc-preproc_bold.nii.gz", "volume", True),
        ("sub-01_desc-preproc_bold.nii.gz", "volume", False),  # no space entity: nothing to compare
    ],
)
def test_the_space_entity_is_compared_with_the_atlas_form(name, form, warns):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_on_template_mismatch(name, form, SHIPPED)
    assert bool(caught) == warns
    if warns:
        assert f"--output-spaces {SHIPPED[form]}" in str(caught[0].message)
