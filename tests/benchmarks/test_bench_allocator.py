from benchmarks.bench_allocator import format_table


def test_the_table_puts_both_settings_side_by_side():
    row = dict(mean_seconds=0.8, best_seconds=0.6, mean_minor_faults=140000, mean_system_seconds=0.7)
    report = {
        "results": {
            "default": {**row, "retained": False, "max_rss_bytes": 2 << 30},
            "retain_freed_memory": {**row, "retained": True, "mean_minor_faults": 3, "max_rss_bytes": 3 << 30},
        }
    }
    lines = format_table(report).splitlines()
    assert lines[2] == "| default | False | 0.800 | 0.600 | 140,000 | 0.700 | 2048 |"
    assert lines[3] == "| retain_freed_memory | True | 0.800 | 0.600 | 3 | 0.700 | 3072 |"
