#!/usr/bin/env bash
# `moecast study --slurm` end to end without Slurm: writes the scripts for the smoke study's runs
# (trained by the report.smoke_study fixture), checks them with bash -n, runs each array task's
# commands with the variables Slurm would set, then the dependent job's validate and report.
# Usage: slurm_study_test.sh MOECAST RUNS OUT (run from the repository root).
set -euo pipefail
moecast=$1
runs=$2
out=$3
rm -rf "$out"
mkdir -p "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$moecast" study configs/studies/smoke.toml --slurm --slurm-dir "$out/slurm" --shards 3 --out "$runs" \
    --results "$out/results" --partition debug --gpus-per-task 1 --cpus-per-task 2 --time 0:30:00 --jobs 2 \
    | tee "$out/write.log"
grep -q "3 array tasks over 36 runs" "$out/write.log" || fail "unexpected task or run count"
for f in study.sbatch finish.sbatch submit.sh; do
    test -x "$out/slurm/$f" || fail "$f not written or not executable"
    bash -n "$out/slurm/$f" || fail "$f: bash -n"
done
grep -q '^#SBATCH --array=0-2$' "$out/slurm/study.sbatch" || fail "array range"
grep -q '^#SBATCH --partition=debug$' "$out/slurm/study.sbatch" || fail "partition"
grep -q '^#SBATCH --gpus-per-task=1$' "$out/slurm/study.sbatch" || fail "gpus per task"
grep -q 'afterok' "$out/slurm/submit.sh" || fail "no dependency in submit.sh"

# The array: each task runs its third of the runs (all already trained by the fixture).
for i in 0 1 2; do
    env SLURM_ARRAY_TASK_ID=$i SLURM_ARRAY_TASK_COUNT=3 SLURM_ARRAY_TASK_MIN=0 bash "$out/slurm/study.sbatch" \
        > "$out/task$i.log"
    grep -q "shard $i/3: 12 selected, 12 done" "$out/task$i.log" || { cat "$out/task$i.log"; fail "task $i"; }
done
# The dependent job.
bash "$out/slurm/finish.sbatch" > "$out/finish.log"
test -s "$out/results/validation.json" && test -s "$out/results/law.toml" || fail "validate wrote nothing"
test -s "$out/results/report.html" && test -s "$out/results/runs.csv" || fail "report wrote nothing"
grep -q "runs: 27 fitting, 9 hold-out, 0 not done" "$out/finish.log" || fail "validate did not see every run"
echo "slurm study OK"
