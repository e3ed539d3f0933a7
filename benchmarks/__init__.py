"""Speed and memory benchmarks of mnemodyn_hf (`python -m benchmarks`); results in docs/benchmarks.md."""

BENCHMARK_NAMES = ("backbone", "scaling", "feature_extraction", "cp", "cp_pretraining")
