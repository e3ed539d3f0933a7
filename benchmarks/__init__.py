"""Speed and memory benchmarks of mnemodyn_hf (`python -m benchmarks`); results in docs/benchmarks.md."""

BENCHMARK_NAMES = (
    "backbone",
    "profile",
    "pretraining_loop",
    "cohort_embedding",
    "scaling",
    "feature_extraction",
    "cp",
    "cp_pretraining",
)
#: What `python -m benchmarks --device cuda` runs (the others are CPU studies); results get a `_cuda` suffix.
DEVICE_BENCHMARKS = ("backbone", "pretraining_loop")
