"""The pretraining corpus: run lengths, and the denoising record a corpus passes to its feature extractor."""


def test_run_lengths_come_from_the_arrow_offsets_and_follow_a_selection():
    import datasets
    import numpy as np

    from mnemodyn_hf.data import cohort_features
    from mnemodyn_hf.training.corpus import run_lengths

    rows = [
        {
            "bold": np.zeros((frames, 3), np.float32),
            "tr": 2.0,
            "subject": f"s{i}",
            "session": "",
            "run": "1",
            "site": "",
            "path": "",
        }
        for i, frames in enumerate((40, 75, 12))
    ]
    runs = datasets.Dataset.from_list(rows, features=cohort_features(3))
    assert run_lengths(runs) == [40, 75, 12]
    assert run_lengths(runs.select([2, 0])) == [12, 40]


def test_pretraining_records_the_denoising_of_its_corpus(fmriprep_derivatives, tmp_path):
    """A cohort denoised by load_cohort pretrains into a feature extractor that records (and applies) the same."""
    import json

    import pytest

    from mnemodyn_hf import MnemoDynFeatureExtractor
    from mnemodyn_hf.data import load_cohort
    from mnemodyn_hf.training.arguments import PretrainingArguments
    from mnemodyn_hf.training.corpus import corpus_denoising, prepare_corpus

    record = {"denoise_strategy": "simple", "motion": "basic"}
    extractor = MnemoDynFeatureExtractor(denoise=record, do_normalize=False)
    cohort = load_cohort(fmriprep_derivatives, space="fsLR", feature_extractor=extractor, cache_dir=tmp_path / "cache")
    cohort.save_to_disk(str(tmp_path / "corpus"))
    corpus = prepare_corpus(
        PretrainingArguments(output_dir=str(tmp_path / "run"), corpus=str(tmp_path / "corpus"), validation_fraction=0.5)
    )
    assert corpus.feature_extractor.denoise == record and corpus.feature_extractor.roi_median is not None

    assert corpus_denoising(cohort.remove_columns("denoise")) is None  # a corpus that does not record it
    mixed = cohort.map(lambda row, index: {"denoise": "" if index else row["denoise"]}, with_indices=True)
    with pytest.raises(ValueError, match="The corpus mixes denoisings .*build it with one feature extractor"):
        corpus_denoising(mixed)
    assert json.loads(cohort[0]["denoise"]) == record
