import numpy as np
import pytest

from mnemodyn_hf.evaluation import make_folds


def _rows(num_subjects=40, sites=("a", "b", "c", "d")):
    subjects = [f"s{i:02d}" for i in range(num_subjects) for _ in range(2)]  # two runs per subject
    site = [sites[int(s[1:]) % len(sites)] for s in subjects]
    labels = [int(s[1:]) % 3 == 0 for s in subjects]
    return subjects, site, labels


@pytest.mark.parametrize("policy", ["leave-site-out", "site-stratified-5fold", "subject-5fold"])
def test_every_row_is_tested_once_and_no_subject_crosses_a_fold(policy):
    subjects, sites, labels = _rows()
    folds = make_folds(policy, subjects, sites, labels)
    tested = np.concatenate([fold.test for fold in folds])
    assert sorted(tested) == list(range(len(subjects)))
    for fold in folds:
        assert not set(np.asarray(subjects)[fold.train]) & set(np.asarray(subjects)[fold.test])
        assert len(fold.train) + len(fold.test) == len(subjects)


def test_leave_site_out_holds_out_one_site_per_fold_and_site_stratified_spreads_sites():
    subjects, sites, labels = _rows()
    lso = make_folds("leave-site-out", subjects, sites, labels)
    assert [f.name for f in lso] == ["a", "b", "c", "d"]
    assert all(set(np.asarray(sites)[f.test]) == {f.name} for f in lso)
    stratified = make_folds("site-stratified-5fold", subjects, sites, labels)
    for fold in stratified:  # 10 subjects per site -> 2 per site in every fold
        counts = {
            site: len(set(np.asarray(subjects)[fold.test][np.asarray(sites)[fold.test] == site])) for site in "abcd"
        }
        assert set(counts.values()) == {2}


def test_external_sites_trains_on_the_named_sites_only():
    subjects, sites, labels = _rows()
    folds = make_folds("external-sites", subjects, sites, labels, train_sites=["a"])
    assert [fold.name for fold in folds] == ["b", "c", "d"]  # one external test per site, the same training rows
    for fold in folds:
        assert set(np.asarray(sites)[fold.train]) == {"a"} and set(np.asarray(sites)[fold.test]) == {fold.name}


def test_a_subject_at_two_sites_is_leakage_with_a_message_naming_it():
    subjects, sites, labels = _rows()
    sites[1] = "b" if sites[1] != "b" else "c"  # s00's second run at another site
    with pytest.raises(ValueError, match=r"Subject leakage in fold .*s00"):
        make_folds("leave-site-out", subjects, sites, labels)
    with pytest.raises(ValueError, match="more than one site"):
        make_folds("site-stratified-5fold", subjects, sites, labels)


def test_unknown_policy_names_the_choices():
    with pytest.raises(ValueError, match="leave-site-out"):
        make_folds("random", ["a"], ["x"])
