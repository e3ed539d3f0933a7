"""Template spaces: an image's (its file name's BIDS `space-` entity) against its atlas's, with a warning when
they differ."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

from ..atlas.atlas_file import template_of


def warn_on_template_mismatch(image_name: str | None, form: str, atlas_templates: Mapping[str, str | None]) -> None:
    """Warn when the template of an image (`space-` entity of `image_name`) is not its atlas form's template.

    Args:
        image_name: the image's file name (None: nothing to compare).
        form: the atlas form that parcellates it, `"volume"` or `"cifti"`.
        atlas_templates: the template of each atlas form (None where unknown).
    """
    image_template, atlas_template = template_of(image_name), atlas_templates.get(form)
    if image_template is None or atlas_template is None or image_template == atlas_template:
        return
    kind = "volume" if form == "volume" else "CIFTI"
    warnings.warn(
        f"{Path(image_name).name} is in template space {image_template!r} (its space- entity) but the atlas's "
        f"{kind} form is in {atlas_template!r}: the parcels would land on the wrong voxels, off by several "
        f"millimeters. Use the fMRIPrep output in {atlas_template} (run fMRIPrep with --output-spaces "
        f"{atlas_template}{':res-2' if form == 'volume' else ''}; load_cohort(..., space={atlas_template!r}) and "
        f"`--space {atlas_template}` pick it in a derivatives folder), or give an atlas in {image_template} "
        f"(MnemoDynFeatureExtractor(atlas_files={{{form!r}: ...}}), whose file name states space-{image_template}).",
        stacklevel=4,
    )


__all__ = ["warn_on_template_mismatch"]
