#!/usr/bin/env bash
# Rewrites every committed report from the committed runs (moecast report --runs DIR/runs.json), the
# example plots in results/plots/, and a PNG screenshot beside each (headless Chromium through
# tests/report/layout_check.sh, which also fails on overlapping text or data outside a plot area).
# PNGs are reduced to 128 colours when Pillow (python3-pil) is installed.
# Usage: results/regenerate.sh [MOECAST] (default build/app/moecast; run from anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."
moecast=${1:-build/app/moecast}
check=tests/report/layout_check.sh

shrink() {
    python3 - "$1" <<'PY' 2>/dev/null || true
import sys
from PIL import Image
img = Image.open(sys.argv[1]).convert("RGB")
img.quantize(colors=128, method=Image.Quantize.FASTOCTREE).save(sys.argv[1], optimize=True)
PY
}

report() {  # DIR STUDY.toml [overrides...]
    local dir=$1
    shift
    "$moecast" report "$@" --runs "results/$dir/runs.json" -o "results/$dir/report.html"
    "$check" "results/$dir/report.html" --summary 900 --screenshot "results/$dir/report.png"
    shrink "results/$dir/report.png"
}
report smoke configs/studies/smoke.toml
report paper-mini configs/studies/paper-mini.toml
report paper-mini-3e13 configs/studies/paper-mini-3e13.toml
report paper-mini-timing-2 configs/studies/paper-mini-timing.toml --name paper-mini-timing-2
report paper-mini-timing-amd-9 configs/studies/paper-mini-timing.toml --name paper-mini-timing-amd-9
# One whole page, for the charts below the first screen.
"$check" results/paper-mini-3e13/report.html --screenshot results/paper-mini-3e13/report-full.png --full
shrink results/paper-mini-3e13/report-full.png

mkdir -p results/plots
"$moecast" optimize --budget 1e21 --hardware h100-sxm --gpus 256 --plot results/plots/optimize-1e21-h100.svg \
    > results/plots/optimize-1e21-h100.txt
"$check" results/plots/optimize-1e21-h100.svg --screenshot results/plots/optimize-1e21-h100.png --window 1290x740
shrink results/plots/optimize-1e21-h100.png
"$moecast" predict mixtral-8x7b --hardware h100-sxm --gpus 64 --parallel tp=2,pp=4,ep=8 --global-batch 512 \
    --tokens 1e12 --plot results/plots/predict-mixtral-8x7b-h100.html > /dev/null
"$check" results/plots/predict-mixtral-8x7b-h100.html --summary 300 \
    --screenshot results/plots/predict-mixtral-8x7b-h100.png --window 1000x620
shrink results/plots/predict-mixtral-8x7b-h100.png
