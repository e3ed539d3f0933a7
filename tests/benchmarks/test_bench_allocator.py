import gc

import torch

from benchmarks.bench_allocator import format_table, steps_in_this_process
from mnemodyn_hf.training import allocator, collector


def test_the_table_puts_every_setting_side_by_side():
    row = dict(mean_seconds=0.8, best_seconds=0.6, mean_minor_faults=140000, mean_system_seconds=0.7, steps=[{}] * 22)
    report = {
        "results": {
            "default": {**row, "retained": False, "frozen": False, "full_collections": 3, "max_rss_bytes": 2 << 30},
            "retain_freed_memory + frozen_setup_objects": {
                **row,
                "retained": True,
                "frozen": True,
                "full_collections": 0,
                "mean_minor_faults": 3,
                "max_rss_bytes": 3 << 30,
            },
        }
    }
    lines = format_table(report).splitlines()
    assert lines[2] == "| default | False, False | 0.800 | 0.600 | 140,000 | 0.700 | 3 in 22 steps | 2048 |"
    assert lines[3] == (
        "| retain_freed_memory + frozen_setup_objects | True, True | 0.800 | 0.600 | 3 | 0.700 | 0 in 22 steps | 3072 |"
    )


def test_a_worker_counts_the_full_collections_of_its_steps_and_applies_its_settings(monkeypatch):
    monkeypatch.setenv(allocator.VARIABLE, "0")
    monkeypatch.setenv(collector.VARIABLE, "1")
    callbacks = list(gc.callbacks)
    forced = []
    original_step = torch.optim.AdamW.step

    def step_with_a_full_collection(self, *args, **kwargs):  # one full collection inside each step
        forced.append(gc.collect())
        return original_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", step_with_a_full_collection)
    worker = steps_in_this_process("tiny", batch=1, steps=3, warmup=1)
    assert (worker["retained"], worker["frozen"]) == (False, True)
    assert [row["full_collections"] for row in worker["steps"]] == [1, 1]
    assert gc.callbacks == callbacks and gc.get_freeze_count() == 0
