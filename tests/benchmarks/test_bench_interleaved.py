from benchmarks.bench_interleaved import format_table


def test_ratios_are_printed_against_the_port_and_the_eager_path():
    seconds = {"literal_reference_port": 6.0, "mnemodyn_eager": 2.0, "mnemodyn": 1.0}
    report = {
        "seconds": {"forward": seconds},
        "ratios": {"forward": {"default_vs_literal": 6.0, "eager_vs_literal": 3.0, "default_vs_eager": 2.0}},
    }
    assert format_table(report).splitlines()[-1] == "| forward | 6.000 | 2.000 | 1.000 | 6.00x | 3.00x | 2.00x |"
