"""The 450-ROI atlas (Tian S3 subcortex + Schaefer-400 7 networks), user atlases, and parcellation.

`load_atlas()` reads the shipped atlas (fsLR-32k CIFTI dlabel on the 91,282 grayordinates and MNI152NLin6Asym 2 mm
volume); `load_atlas(cifti=..., volume=..., labels=...)` reads any other dlabel and/or label volume.
`Parcellator` averages dense CIFTI series and 4-D NIfTI volumes into its parcels.
"""

from .atlas import (
    ATLAS_DATA_DIR,
    ATLAS_FORMS,
    DEFAULT_ATLAS_FILES,
    SHIPPED_ATLAS_ROIS,
    SHIPPED_ATLAS_TEMPLATES,
    Atlas,
    load_atlas,
)
from .atlas_file import AtlasFile
from .parcellation import ParcelAverager, Parcellator

__all__ = [
    "ATLAS_DATA_DIR",
    "ATLAS_FORMS",
    "DEFAULT_ATLAS_FILES",
    "SHIPPED_ATLAS_ROIS",
    "SHIPPED_ATLAS_TEMPLATES",
    "Atlas",
    "AtlasFile",
    "ParcelAverager",
    "Parcellator",
    "load_atlas",
]
