"""Feature extractor for MnemoDyn: fMRI recordings (NIfTI, CIFTI, ROI tables) -> padded (B, T, R) model inputs."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm
from transformers import BatchFeature, SequenceFeatureExtractor

from .atlas import Atlas, Parcellator, load_atlas
from .atlas.atlas import atlas_files_for_rois
from .atlas.atlas_file import decode_atlas_files
from .configuration_mnemodyn import DEFAULT_REPETITION_TIME, MnemoDynConfig
from .preprocessing.denoising import FrameSelection, denoise_parcel_means, denoise_record, per_item_confounds
from .preprocessing.fmri_inputs import (
    as_batch,
    match_roi_columns,
    per_item,
    read_recording,
    reading,
    source_path,
    source_repetition_time,
)
from .preprocessing.missing_values import fill_missing_values
from .preprocessing.robust_scaling import (
    RoiQuantileSketch,
    centre_frames,
    check_statistics,
    robust_scale,
    warn_constant_rois,
)
from .preprocessing.templates import warn_on_template_mismatch
from .preprocessing.temporal_resampling import resample_frames


class MnemoDynFeatureExtractor(SequenceFeatureExtractor):
    r"""
    Turns resting-state fMRI into MnemoDyn inputs, in five steps that can each be switched off:

    1. **Parcellation** into the atlas's R ROIs (by default the shipped 450-ROI Tian S3 + Schaefer-400 atlas): the
       mean over each parcel's grayordinates (CIFTI dense series) or voxels (4-D NIfTI), leaving out NaN/inf values,
       as one sparse reduction. A volume on another grid than the atlas gets the atlas resampled onto its grid
       (nearest neighbour), never the data. Already parcellated inputs (arrays, .npy/.tsv/.csv tables, CIFTI
       ptseries or the reference's parcellated dtseries) are matched to the atlas's ROI order by column name.
       A ROI with no finite value is filled with 0 and a ROI with missing frames with its mean over its finite
       frames, with a warning. An image whose file name's `space-` entity is not the atlas's template (for the
       shipped atlas MNI152NLin6Asym and fsLR) gets a warning naming what to use instead.
    2. **Denoising** (`denoise`): the run's fMRIPrep confounds, selected by one of nilearn's preset strategies
       (`load_confounds_strategy`: `"simple"`, `"scrubbing"`, `"compcor"`, `"ica_aroma"`), are regressed out of the
       parcel means by `nilearn.signal.clean` with its `sample_mask`, as `NiftiLabelsMasker` does. The confounds
       are found beside fMRIPrep images or given as `confounds=`; frames dropped inside the run are filled by
       interpolation so that the series keeps its timing (see `mnemodyn_hf.preprocessing.denoising`). ROI tables
       and arrays are taken as already denoised unless confounds are given for them.
    3. **Resampling** from the input's TR to `target_repetition_time` (`do_resample`): band-limited windowed-sinc
       interpolation, anti-aliased (see `mnemodyn_hf.preprocessing.temporal_resampling`). The input's TR comes from
       the header (NIfTI pixdim[4] in its xyzt time unit; CIFTI series step) or from the caller (`repetition_time=`,
       which wins); a missing TR is an error, never a guess.
    4. **Robust scaling** (`do_normalize`): each recording is centred on its temporal mean, then
       `(x - median) / IQR` per ROI with the corpus statistics learned by `fit` and stored in
       `preprocessor_config.json` (see `mnemodyn_hf.preprocessing.robust_scaling`).
    5. **Padding / truncation** into a batch with an `attention_mask` (1 = real frame), as every transformers
       sequence feature extractor (`padding`, `max_length`, `truncation`, `pad_to_multiple_of`).

    Args:
        atlas_files (`dict[str, str | dict]`, *optional*):
            The atlas, as files by form: `"cifti"` (a .dlabel.nii), `"volume"` (a 3-D label NIfTI) and/or
            `"labels"` (a TSV with columns key and name); see `mnemodyn_hf.atlas.load_atlas`. Each is a path or
            a file embedded by `save_pretrained` (`AtlasFile.to_json`). Defaults to the shipped 450-ROI atlas.
            `preprocessor_config.json` carries the atlas inside it (`null` for the shipped atlas, which comes
            with the package), so a saved extractor loads through any loader that reads the config: the class's
            `from_pretrained`, `AutoFeatureExtractor`, `pipeline` or `from_dict`.
        roi_names (`list[str]`, *optional*):
            The atlas's ROI names in column order; when given (as in a saved config) they are checked against the
            atlas.
        target_repetition_time (`float`, *optional*, defaults to 0.735):
            TR in seconds the model expects (`MnemoDynConfig.repetition_time`); `None` keeps the input's frames.
        do_resample (`bool`, *optional*, defaults to `True`):
            Whether to resample inputs to `target_repetition_time`.
        do_normalize (`bool`, *optional*, defaults to `True`):
            Whether to apply the robust scaling (needs `roi_median` and `roi_iqr`, e.g. from `fit`).
        roi_median (`list[float]`, *optional*):
            Per-ROI median of the centred training series.
        roi_iqr (`list[float]`, *optional*):
            Per-ROI interquartile range of the centred training series (0 is treated as 1).
        padding_value (`float`, *optional*, defaults to 0.0):
            Value of padded frames.
        denoise (`str` or `dict`, *optional*):
            A nilearn preset strategy name, or `{"denoise_strategy": name, **parameters}` with parameters of
            `load_confounds_strategy` (e.g. `{"denoise_strategy": "scrubbing", "fd_threshold": 0.3}`); `None` (the
            default) denoises nothing. Needs nilearn (`pip install 'mnemodyn_hf[denoise]'`) when applied.

    Example:

    ```python
    >>> from mnemodyn_hf import MnemoDynFeatureExtractor
    >>> extractor = MnemoDynFeatureExtractor(do_normalize=False)
    >>> batch = extractor(["sub-01_bold.dtseries.nii", "sub-02_space-MNI152NLin6Asym_bold.nii.gz"], return_tensors="pt")
    >>> batch["input_values"].shape, batch["attention_mask"].shape  # (2, T, 450), (2, T)
    ```
    """

    model_input_names = ["input_values", "attention_mask"]

    def __init__(
        self,
        atlas_files: dict[str, str | os.PathLike | dict[str, str]] | None = None,
        roi_names: list[str] | None = None,
        target_repetition_time: float | None = DEFAULT_REPETITION_TIME,
        do_resample: bool = True,
        do_normalize: bool = True,
        roi_median: list[float] | None = None,
        roi_iqr: list[float] | None = None,
        padding_value: float = 0.0,
        denoise: str | dict[str, Any] | None = None,
        **kwargs,
    ):
        atlas = load_atlas(**decode_atlas_files(atlas_files or {}))
        if roi_names is not None:
            atlas.check_names(roi_names)
        if target_repetition_time is not None and not target_repetition_time > 0:
            raise ValueError(f"target_repetition_time must be positive seconds or None, got {target_repetition_time}.")
        check_statistics(roi_median, roi_iqr, atlas.num_rois)
        sampling_rate = 1 / target_repetition_time if target_repetition_time else None
        super().__init__(
            feature_size=atlas.num_rois, sampling_rate=sampling_rate, padding_value=padding_value, **kwargs
        )
        self._atlas = atlas
        self._shipped_atlas = not atlas_files
        self._parcellator = Parcellator(atlas)
        self.denoise = denoise_record(denoise)
        self.roi_names = list(atlas.names)
        self.target_repetition_time = target_repetition_time
        self.do_resample = do_resample
        self.do_normalize = do_normalize
        self.roi_median = None if roi_median is None else [float(v) for v in roi_median]
        self.roi_iqr = None if roi_iqr is None else [float(v) for v in roi_iqr]

    @classmethod
    def for_rois(
        cls,
        num_rois: int,
        target_repetition_time: float | None,
        atlas_labels: str | os.PathLike | None = None,
        denoise: str | dict[str, Any] | None = None,
    ) -> MnemoDynFeatureExtractor:
        """An unfitted extractor for parcellated data with `num_rois` columns, the one place that decides its atlas.

        The atlas is the label table `atlas_labels` (TSV with columns key, name) when given; otherwise the shipped
        Schaefer-400 + Tian S3 atlas when `num_rois` is its 450 ROIs; otherwise a label table `ROI_001`, ...
        (ROI tables and arrays can then be read, images cannot). `target_repetition_time=None` keeps the input's
        frames (no resampling). `denoise` records the denoising the data went through (applied to images read
        later). The extractor does not normalize until `fit` has learned its statistics.
        """
        atlas_files = atlas_files_for_rois(num_rois, atlas_labels)
        extractor = cls(atlas_files, target_repetition_time=target_repetition_time, do_normalize=False, denoise=denoise)
        if extractor.feature_size != num_rois:
            raise ValueError(
                f"The atlas {sorted(f.name for f in extractor.atlas.files.values())} has {extractor.feature_size} ROIs "
                f"but the data have {num_rois} columns; give the label table of the atlas the data were parcellated "
                "with."
            )
        return extractor

    @property
    def atlas(self) -> Atlas:
        """The atlas inputs are parcellated with."""
        return self._atlas

    def __call__(
        self,
        inputs: Any,
        repetition_time: float | Sequence[float | None] | None = None,
        padding: bool | str = True,
        max_length: int | None = None,
        truncation: bool = False,
        pad_to_multiple_of: int | None = None,
        return_attention_mask: bool | None = None,
        return_tensors: str | None = None,
        confounds: Any = None,
    ) -> BatchFeature:
        """
        Parcellate, resample, scale and pad one recording or a list of them.

        Args:
            inputs: one input or a list (or a (B, T, R) array). An input is a (T, R) array or tensor, a path to or
                nibabel image of a 4-D NIfTI or a CIFTI dense series, a CIFTI ptseries (or the reference's
                parcellated dtseries) with R named columns, an .npy/.tsv/.csv ROI table, or a DataFrame.
            repetition_time: the inputs' TR in seconds (one value, or one per input; `None` entries use the
                header). Needed for arrays and tables when resampling; overrides a header's TR (with a warning
                if they differ).
            padding, max_length, truncation, pad_to_multiple_of, return_attention_mask: as in
                `SequenceFeatureExtractor.pad`; by default the batch is padded to its longest recording.
            return_tensors: `"np"` (default) or `"pt"`.
            confounds: the fMRIPrep confounds of the inputs for `denoise` (a DataFrame or TSV path, or a list with
                one per input, None entries found beside their images).

        Returns:
            `BatchFeature` with `input_values` (B, T, R) float32 and `attention_mask` (B, T) (1 = real frame).
        """
        items = as_batch(inputs)
        repetition_times, item_confounds = per_item(repetition_time, len(items)), per_item_confounds(confounds, items)
        statistics = self._scaling_statistics() if self.do_normalize else None
        series = []
        for index, item in enumerate(items):
            values, _ = self.roi_series(item, repetition_times[index], item_confounds[index], index)
            if statistics is not None:
                values = robust_scale(values, *statistics)
            series.append(values.astype(np.float32))
        return self.pad(
            BatchFeature({"input_values": series}),
            padding=padding,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            return_attention_mask=return_attention_mask,
            return_tensors=return_tensors or "np",
        )

    def fit(
        self, corpus: Iterable[Any], repetition_time: float | None = None, confounds: Iterable[Any] | None = None
    ) -> MnemoDynFeatureExtractor:
        """
        Learn the robust-scaling statistics (per-ROI median and IQR) of a corpus in one streaming pass.

        Each recording goes through the same steps as `__call__` (parcellation, denoising, resampling), is centred on
        its temporal mean and counted in a `RoiQuantileSketch`; recordings are never stacked, so any corpus size
        fits in memory. Medians and IQRs are within 0.5 % (relative) of the exact quantiles of the pooled values.

        Args:
            corpus: an iterable of inputs (anything `__call__` accepts as one input), e.g. a generator of paths.
            repetition_time: the TR of every recording, for inputs whose header has none.
            confounds: for `denoise`, the recordings' fMRIPrep confounds in corpus order (None: found beside them).

        Returns:
            The feature extractor, with `roi_median` and `roi_iqr` set and `do_normalize` switched on.
        """
        sketch = RoiQuantileSketch(self.feature_size)
        num_recordings = 0
        pairs = zip(corpus, confounds, strict=True) if confounds is not None else ((item, None) for item in corpus)
        for index, (item, item_confounds) in enumerate(tqdm(pairs, desc="Robust-scaling statistics", unit="recording")):
            sketch.update(centre_frames(self.roi_series(item, repetition_time, item_confounds, index)[0]))
            num_recordings += 1
        if num_recordings == 0:
            raise ValueError("fit needs at least one recording; the corpus was empty.")
        median, q25, q75 = (sketch.quantile(q) for q in (0.5, 0.25, 0.75))
        iqr = warn_constant_rois(q75 - q25, self.roi_names)
        self.roi_median, self.roi_iqr = median.tolist(), iqr.tolist()
        self.do_normalize = True
        return self

    def check_model_config(self, config: MnemoDynConfig, model_name: str = "the model") -> None:
        """Check that this extractor makes what the model reads: `config.num_rois` ROIs at `config.repetition_time`.

        The TR has two records, the model's `config.repetition_time` and this extractor's `target_repetition_time`;
        every place that meets both (the pipeline, evaluation, `embed`, pretraining's export) calls this check.

        Raises:
            ValueError: the ROI counts differ, or the extractor resamples to another TR than the model's.
        """
        model_rois = config.adapter_input_rois or config.num_rois  # a ROI adapter reads another atlas's ROIs
        if self.feature_size != model_rois:
            raise ValueError(
                f"The feature extractor makes {self.feature_size} ROIs per frame but {model_name} reads "
                f"{model_rois}: save the extractor of the atlas the model was pretrained with beside it."
            )
        target = self.target_repetition_time
        if self.do_resample and target is not None and not np.isclose(target, config.repetition_time, rtol=1e-6):
            raise ValueError(
                f"The feature extractor resamples to TR {target:g} s but {model_name} was pretrained at TR "
                f"{config.repetition_time:g} s (config.repetition_time): the two records of the model's TR disagree. "
                f"Save the extractor with target_repetition_time={config.repetition_time:g} beside the model (or "
                "correct config.repetition_time if the extractor's TR is the one the model was pretrained at)."
            )

    def save_pretrained(self, save_directory: str | os.PathLike, push_to_hub: bool = False, **kwargs) -> list[str]:
        """Write `preprocessor_config.json`, the atlas inside it (then push, if asked).

        Raises:
            ValueError: `do_normalize=True` without statistics: such an extractor would fail at its first call.
        """
        if self.do_normalize and self.roi_median is None:
            raise ValueError(
                "This feature extractor has do_normalize=True but no robust-scaling statistics, so a saved copy "
                "would fail when used. Learn them first (extractor.fit(training_files)) or set do_normalize=False "
                "before saving (the users of the folder then fit their own)."
            )
        return super().save_pretrained(save_directory, push_to_hub=push_to_hub, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serializable config: public attributes and the atlas files embedded (`None` for the shipped
        atlas); derived sizes left out."""
        output = {key: copy.deepcopy(value) for key, value in self.__dict__.items() if not key.startswith("_")}
        for derived in ("feature_size", "sampling_rate"):
            output.pop(derived, None)
        output["atlas_files"] = (
            None if self._shipped_atlas else {form: file.to_json() for form, file in self._atlas.files.items()}
        )
        output["feature_extractor_type"] = type(self).__name__
        return output

    def roi_series(
        self, item: Any, repetition_time: float | None = None, confounds: Any = None, index: int = 0
    ) -> tuple[np.ndarray, FrameSelection]:
        """One input -> (T, R) float64 ROI series at the target TR after every step before the robust scaling
        (parcellation, denoising, resampling), and the frames of the input it keeps (`FrameSelection`)."""
        recording = read_recording(item, index)
        path = source_path(item) if recording.kind != "table" else None
        warn_on_template_mismatch(path, recording.kind, self._atlas.templates)
        with reading(recording.source):
            if recording.kind == "volume":
                values = self._parcellator.volume(recording.image, recording.source)
            elif recording.kind == "cifti":
                values = self._parcellator.cifti(recording.image, recording.brain_models, recording.source)
            else:
                values = match_roi_columns(recording.values, recording.column_names, self.roi_names, recording.source)
        values = fill_missing_values(np.asarray(values, dtype=np.float64), self.roi_names, recording.source)
        run_tr, is_image = repetition_time or recording.repetition_time, recording.kind != "table"
        values, frames = denoise_parcel_means(self.denoise, values, path, confounds, recording.source, run_tr, is_image)
        if not self.do_resample or self.target_repetition_time is None:
            return values, frames
        source_tr = source_repetition_time(recording, repetition_time, self.target_repetition_time)
        return resample_frames(values, source_tr, self.target_repetition_time), frames

    def _scaling_statistics(self) -> tuple[np.ndarray, np.ndarray]:
        if self.roi_median is None:
            raise ValueError(
                "do_normalize=True needs the robust-scaling statistics (roi_median, roi_iqr), and this feature "
                "extractor has none: load one saved with them (from_pretrained), learn them with fit(corpus), or "
                "pass do_normalize=False for unscaled parcel means."
            )
        return np.asarray(self.roi_median), np.asarray(self.roi_iqr)


def load_fitted_extractor(folder: str | os.PathLike) -> MnemoDynFeatureExtractor | None:
    """The feature extractor saved in a model folder when it carries robust-scaling statistics, else None; checked
    against the folder's config.json (`check_model_config`) when there is one."""
    if not (Path(folder) / "preprocessor_config.json").is_file():
        return None
    extractor = MnemoDynFeatureExtractor.from_pretrained(folder)
    if (Path(folder) / "config.json").is_file():
        extractor.check_model_config(MnemoDynConfig.from_pretrained(folder), model_name=str(folder))
    return extractor if extractor.roi_median is not None else None
