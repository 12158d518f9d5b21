# examples/optimal_sparsity.py: runs, prints the loss-optimal sparsity that moecast.optimize finds
# for its largest budget, and writes the plot (skipped, with the reason, without matplotlib).
import os
import subprocess
import sys

import pytest

import moecast


def test_optimal_sparsity_example(source_dir, tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed (scripts/setup installs python3-matplotlib)")
    out = tmp_path / "loss_vs_cost.png"
    run = subprocess.run([sys.executable, str(source_dir / "examples/optimal_sparsity.py"), "--gpus", "64",
                          "--budgets", "1e3,1e4", "-o", str(out)],
                         capture_output=True, text=True, env=dict(os.environ), check=False)
    assert run.returncode == 0, run.stderr
    best = moecast.optimize(budget=1e4, budget_unit="gpu-hours", hardware="h100-sxm", gpus=64)["optimum"]
    assert f"loss-optimal sparsity S = {best['sparsity']:.4f}" in run.stdout, run.stdout
    assert f"loss {best['loss']:.4f}" in run.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
