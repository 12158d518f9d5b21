#!/usr/bin/env python3
"""The loss-optimal sparsity under a GPU-hour budget, and loss against cost.

For each GPU-hour budget, moecast.optimize searches the paper's family of real architectures on
the given hardware (every candidate priced by the cost model in its fastest parallel layout) and
returns the lowest loss the Abnar et al. law expects at each sparsity. The script prints the
optimum at the largest budget and plots, for each sparsity, the optimum's loss against the
GPU-hours it spends (matplotlib).

Usage: examples/optimal_sparsity.py [--hardware h100-sxm] [--gpus 256] [--budgets 1e3,1e4,1e5]
                                    [-o loss_vs_cost.png]
"""
import argparse
import sys

import moecast


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hardware", default="h100-sxm")
    ap.add_argument("--gpus", type=int, default=256)
    ap.add_argument("--budgets", default="1e3,3e3,1e4,3e4,1e5", help="GPU-hour budgets, comma-separated")
    ap.add_argument("--law", default="abnar2025")
    ap.add_argument("-o", "--output", default="loss_vs_cost.png", help="the plot (PNG, SVG or PDF)")
    a = ap.parse_args(argv)
    budgets = [float(b) for b in a.budgets.split(",")]

    curves = {}  # sparsity -> [(gpu_hours spent, loss)]
    results = []
    for budget in budgets:
        r = moecast.optimize(law=a.law, budget=budget, budget_unit="gpu-hours", hardware=a.hardware, gpus=a.gpus)
        results.append(r)
        for row in r["by_sparsity"]:
            curves.setdefault(row["sparsity"], []).append((row["cost"]["gpu_hours"], row["loss"]))
    best = results[-1].get("optimum")
    if best is None:
        print(f"no architecture fits {budgets[-1]:g} GPU-hours on {a.gpus} x {a.hardware}", file=sys.stderr)
        return 1
    print(f"{budgets[-1]:g} GPU-hours on {a.gpus} x {a.hardware}, law {a.law}:")
    print(f"  loss-optimal sparsity S = {best['sparsity']:.4f} (E {best['experts']}, K {best['top_k']}), "
          f"{best['layers']} layers x d_model {best['d_model']}, N = {best['params']:.3g}, "
          f"N_a = {best['active_params']:.3g}, D = {best['tokens']:.3g} tokens")
    print(f"  loss {best['loss']:.4f}, {best['cost']['gpu_hours']:.4g} GPU-hours, layout {best['cost']['layout']}")

    try:
        import matplotlib
    except ImportError:
        print("matplotlib is not installed: no plot (scripts/setup installs python3-matplotlib)", file=sys.stderr)
        return 0
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s in sorted(curves):
        pts = sorted(curves[s])
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=f"S = {s:.3g}")
    ax.plot([best["cost"]["gpu_hours"]], [best["loss"]], marker="*", markersize=14, color="black",
            linestyle="none", label="optimum")
    ax.set_xscale("log")
    ax.set_xlabel(f"GPU-hours on {a.hardware} ({a.gpus} GPUs)")
    ax.set_ylabel(f"predicted loss ({a.law})")
    ax.set_title("Loss-optimal architecture per sparsity vs cost")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(a.output)
    print(f"wrote {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
