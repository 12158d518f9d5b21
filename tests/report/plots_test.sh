#!/usr/bin/env bash
# The charts of `moecast optimize --plot` (FLOP budget, then priced on hardware) and `moecast predict
# --plot` (SVG and HTML page) hold what they promise, and pass layout_check.sh in Chromium (exit 77,
# skipped, when chromium is not installed; the content checks run first either way). Also
# `moecast report --runs`: a committed report rebuilt from its runs.json gives the same runs back.
# Usage: plots_test.sh MOECAST OUT (run from the repository root).
set -euo pipefail
moecast=$1
out=$2
here=$(dirname "$0")
rm -rf "$out"
mkdir -p "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$moecast" optimize --budget 1e21 --plot "$out/optimize.svg" > /dev/null
"$moecast" optimize --budget 1e21 --hardware h100-sxm --gpus 256 --plot "$out/optimize-h100.svg" > /dev/null
for t in "IsoFLOP curves at C = 1e21 FLOPs" "Optimal loss at each sparsity" "Lowest loss against training cost" \
         "Optimum against budget" "chosen: S = 0.98"; do
    grep -q "$t" "$out/optimize.svg" || fail "optimize.svg lacks '$t'"
done
grep -q "C, training compute (FLOPs)" "$out/optimize.svg" || fail "the frontier without hardware is against FLOPs"
grep -q "training time (GPU-hours)" "$out/optimize-h100.svg" || fail "the frontier on hardware is against GPU-hours"

args=(predict mixtral-8x7b --hardware h100-sxm --gpus 64 --parallel tp=2,pp=4,ep=8 --global-batch 512 --tokens 1e12)
"$moecast" "${args[@]}" --plot "$out/predict.svg" > /dev/null
"$moecast" "${args[@]}" --plot "$out/predict.html" > /dev/null
grep -q "Step time .* per step: mixtral-8x7b on 64 × h100-sxm" "$out/predict.svg" || fail "predict.svg: no step-time bar"
grep -q "capacity 80 GB" "$out/predict.svg" || fail "predict.svg: no capacity line"
grep -q '<section id="summary">' "$out/predict.html" || fail "predict.html: no summary"

"$moecast" report configs/studies/smoke.toml --runs results/smoke/runs.json -o "$out/report/report.html" \
    | grep -q "(10 charts)" || fail "report --runs: not the smoke report's 10 charts"
cmp "$out/report/runs.json" results/smoke/runs.json || fail "report --runs changed runs.json"
cmp "$out/report/runs.csv" results/smoke/runs.csv || fail "report --runs changed runs.csv"
set +e
msg=$("$moecast" report configs/studies/smoke.toml --runs "$out/none.json" -o "$out/bad/report.html" 2>&1)
rc=$?
set -e
[ $rc -eq 2 ] && echo "$msg" | grep -q "none.json.*cannot open" || fail "report --runs on a missing file: $rc $msg"

status=0
for f in optimize.svg optimize-h100.svg predict.svg; do
    "$here/layout_check.sh" "$out/$f" || status=$?
    [ $status -eq 77 ] && exit 77
done
"$here/layout_check.sh" "$out/predict.html" --summary 300 || status=$?
[ $status -eq 0 ] || exit $status
echo "plots OK"
