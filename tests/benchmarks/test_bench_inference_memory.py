from benchmarks.bench_inference_memory import format_table


def test_the_table_relates_peak_rss_to_the_weights_in_total_and_above_the_imports():
    mib = 2**20
    report = {
        "weights_bytes": 500 * mib,
        "rss_after_imports_bytes": 300 * mib,
        "rss_after_load_bytes": 310 * mib,
        "peak_rss_bytes": 900 * mib,
        "peak_over_weights": 1.8,
        "peak_above_imports_over_weights": 1.2,
    }
    row = format_table(report).splitlines()[-1]
    assert row == "| 500 MiB | 300 MiB | 310 MiB | 900 MiB | 1.80 | 1.20 |"
