#!/usr/bin/env bash
# A study survives its driver and its runs being killed: a tiny study (6 runs on the test text) is
# started and killed three times at different points (SIGKILL of the whole process group, SIGTERM
# of the driver, SIGKILL of the driver alone while its runs go on), then run to the end. No run may
# be lost, run twice or left half-written: every run has one result.json, its metrics.jsonl logs
# each step once and in order, and no temporary file is left.
# Usage: study_kill_test.sh MOECAST OUT (run from the repository root).
set -euo pipefail
moecast=$1
out=$2
rm -rf "$out"
mkdir -p "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }

cat > "$out/study.toml" <<TOML
name = "kill"
description = "6 runs of a few hundred steps, killed and resumed"
train = "configs/train/default.toml"
set = ["model.seq_len=64", "train.batch_tokens=512", "train.micro_batch_tokens=512", "train.lr=3e-3",
       "train.log_every=5", "train.eval_every=1000000", "train.eval_tokens=2048", "train.checkpoint_every=20",
       'data.train=["tests/data/emma-excerpt.txt"]', "data.val=[]", "data.literary=[]"]
threads = 1
head_dim = 16
expert_width_ratio = 4.0
out_dir = "runs"
profile = "profiles/cpu-intel-xeon-vm.toml"
sparsities = [[1, 1], [2, 1]]
[[budget]]
flops = 2e10
shapes = [[1, 16], [1, 32]]
[holdout]
flops = 4e10
shapes = [[1, 16]]
[fit]
law = "abnar2025"
TOML
study() { "$moecast" study "$out/study.toml" --out "$out/runs" --jobs 2 "$@"; }

# Three interrupted attempts, each in its own process group.
for attempt in "KILL group 1.5" "TERM driver 2.5" "KILL driver 2"; do
    read -r sig who delay <<< "$attempt"
    setsid bash -c "exec $moecast study $out/study.toml --out $out/runs --jobs 2" > "$out/attempt.log" 2>&1 &
    driver=$!
    sleep "$delay"
    if [ "$who" = group ]; then kill -"$sig" -- -"$driver" 2>/dev/null || true; else kill -"$sig" "$driver" 2>/dev/null || true; fi
    wait "$driver" 2>/dev/null || true
    echo "attempt ($sig $who after ${delay} s):"; sed 's/^/  /' "$out/attempt.log"
done

# Runs orphaned by the last kill hold their claims until they finish; drive the study to the end.
for _ in $(seq 1 60); do
    study > "$out/final.log" 2>&1 || true
    grep -q " 0 to run" "$out/final.log" && grep -q ", 0 busy" "$out/final.log" && break
    sleep 2
done
cat "$out/final.log"
grep -q " 0 to run" "$out/final.log" || fail "the study did not finish"

runs=$(find "$out/runs" -mindepth 1 -maxdepth 1 -type d | wc -l)
results=$(find "$out/runs" -name result.json | wc -l)
[ "$runs" -eq 6 ] || fail "expected 6 run folders, found $runs"
[ "$results" -eq 6 ] || fail "expected 6 results, found $results"
[ -z "$(find "$out/runs" -name '*.tmp.*')" ] || fail "temporary files left: $(find "$out/runs" -name '*.tmp.*')"
for m in "$out"/runs/*/metrics.jsonl; do
    steps=$(grep -o '"step":[0-9]*' "$m" | cut -d: -f2)
    [ "$steps" = "$(echo "$steps" | sort -n -u)" ] || fail "$m: steps repeated or out of order: $(echo $steps)"
done
echo "study kill test OK"
