#!/usr/bin/env python3
"""Predictions per second through Python: moecast.sweep on two grids, timed after a warm-up call,
median of 5 repetitions, next to the same sweep in C++ alone (bench_predict's BM_Sweep*, run in the
same process run here when its path is given). Method: bench/README.md.

Usage: PYTHONPATH=build/python bench/sweep_bench.py [build/bench/bench_predict]
"""
import statistics
import subprocess
import sys
import time

import moecast

# Cost sweep: DeepSeek-V3 on H100, 8 x 4 x 4 x 2 x 2 x 2 = 1024 layouts and settings, all valid.
COST_GRID = {
    "gpus": [1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072],
    "parallel": ["tp=2,pp=8,vp=4,ep=64", "tp=1,pp=8,ep=64", "tp=2,pp=16,ep=32", "tp=4,pp=8,ep=16"],
    "micro_batch": [1, 2, 4, 8],
    "precision": ["bf16", "fp8"],
    "recompute": ["none", "full"],
    "tokens": [1e12, 1e13],
}
COST_FIXED = dict(hardware="h100-sxm", global_batch=131072 * 8, seq_len=4096)
# Count sweep over model keys: every row a different model (32 x 8 x 4 = 1024).
COUNT_GRID = {"moe.experts": list(range(8, 264, 8)), "moe.top_k": [1, 2, 3, 4, 5, 6, 7, 8], "layers": [24, 32, 48, 61]}


def rate(call, rows_hint):
    call()  # warm-up: the model file, profiles and first allocations
    times = []
    rows = 0
    for _ in range(5):
        t = time.perf_counter()
        out = call()
        times.append(time.perf_counter() - t)
        rows = len(next(iter(out.values())))
    assert rows == rows_hint, rows
    return rows / statistics.median(times)


def main():
    cases = [
        ("cost sweep, 1 thread", lambda: moecast.sweep("deepseek-v3", COST_GRID, threads=1, **COST_FIXED), 1024),
        ("cost sweep, all threads", lambda: moecast.sweep("deepseek-v3", COST_GRID, threads=0, **COST_FIXED), 1024),
        ("count sweep (a model per row), 1 thread", lambda: moecast.sweep("deepseek-v3", COUNT_GRID, threads=1), 1024),
        ("count sweep (a model per row), all threads", lambda: moecast.sweep("deepseek-v3", COUNT_GRID, threads=0),
         1024),
    ]
    for name, call, rows in cases:
        print(f"{name:48s} {rate(call, rows):12.0f} predictions/s through Python ({rows} rows)")
    if len(sys.argv) > 1:
        subprocess.run([sys.argv[1], "--benchmark_filter=BM_Sweep", "--benchmark_repetitions=5",
                        "--benchmark_report_aggregates_only=true"], check=True)


if __name__ == "__main__":
    main()
