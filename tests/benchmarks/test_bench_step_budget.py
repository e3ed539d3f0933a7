import math

import pytest

from benchmarks.bench_backbone import SIZES
from benchmarks.bench_step_budget import (
    PARTS,
    _PartTimer,
    dense_layer_flops,
    field_kernel_operations,
    format_table,
    run,
)
from mnemodyn_hf import MnemoDynConfig, field_contraction, region_products
from mnemodyn_hf.native_kernels import kernel_status


@pytest.mark.skipif(not kernel_status().available, reason="the field kernel and the region kernels are not built")
@pytest.mark.parametrize("batch", [1, 9])  # 9 windows: 72 rows at the finest level, above the kernels' 64
def test_every_part_is_timed_and_the_products_count_every_multiply_add(batch):
    report = run("tiny", batch=batch, rounds=2, matmul_size=64)
    assert all(report["parts"][part] > 0 for part in PARTS)
    size = SIZES["tiny"]
    config = MnemoDynConfig(**size)
    channels, regions = 2 * size["latent_channels"], size["num_regions"]
    rows = [batch * math.ceil(length / regions) for length in config.band_lengths[1:]]  # one window per sequence
    per_layer = sum(3 * 2 * regions * m * channels * channels * size["operator_kernel_size"] for m in rows)
    assert report["steps"][0]["product_flops"] == size["num_layers"] * per_layer
    assert report["floors"]["region products"] > 0 and report["floors"]["optimizer"] > 0


def test_the_timer_puts_the_entry_points_back():
    kernel = field_contraction._NativeTanhFieldContraction
    before = (kernel.forward, kernel.backward, region_products._product)
    with _PartTimer():
        assert region_products._product is not before[2]
    assert (kernel.forward, kernel.backward, region_products._product) == before


def test_the_table_compares_each_part_with_its_floor():
    report = {
        "parts": {"field kernel": 0.12, "region products": 0.15, "optimizer": 0.06, "everything else": 0.07},
        "floors": {"field kernel": 0.1, "region products": 0.1, "optimizer": 0.05, "everything else": 0.035},
        "step_seconds": 0.4,
    }
    lines = format_table(report).splitlines()
    assert lines[2] == "| field kernel | 0.120 | 0.100 | 1.20x |"
    assert lines[5] == "| everything else | 0.070 | 0.035 | 2.00x |"
    assert lines[6] == "| step | 0.400 | 0.285 | 1.40x |"


def test_the_field_kernel_count_follows_its_arithmetic_per_entry():
    config = {**SIZES["released"]}
    entries = 4 * 490 * 300 * 464  # layers x frames x channels x ROIs padded to 16
    assert field_kernel_operations(config, 490) == entries * 36  # K = 3: 14 forward + 22 backward
    config["bottleneck_size"] = 1
    assert field_kernel_operations(config, 490) == entries * 28


def test_the_dense_layers_count_three_products_each_but_the_first_input_gradient():
    per_frame = 450 * 100 + 100 * 3 + 300 * 450  # input projection, bottleneck, output projection
    coarse = 4 * 300 * 16 * 16  # four coarse mixers, one (16, 16) matrix per latent channel
    expected = 3 * 2 * 4 * (490 * per_frame + coarse) - 2 * 490 * 450 * 100
    assert dense_layer_flops(SIZES["released"], 490) == expected == 2_083_600_800
