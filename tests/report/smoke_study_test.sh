#!/usr/bin/env bash
# End-to-end smoke study: trains configs/studies/smoke.toml from scratch into OUT/runs (2 jobs),
# checks a second `moecast study` runs nothing, validates (fit, prediction, findings; again with the
# study's name and profile overridden) and writes the report with its CSV/JSON.
# Usage: smoke_study_test.sh MOECAST OUT (run from the repository root).
set -euo pipefail
moecast=$1
out=$2
rm -rf "$out"
mkdir -p "$out"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$moecast" study configs/studies/smoke.toml --out "$out/runs" --jobs 2 | tee "$out/study.log"
grep -q "36 ran (36 completed, 0 failed)" "$out/study.log" || fail "not every run completed"
"$moecast" study configs/studies/smoke.toml --out "$out/runs" --jobs 2 | tee "$out/study2.log"
grep -q "0 to run" "$out/study2.log" || fail "a second study run started runs again"

"$moecast" validate configs/studies/smoke.toml --out "$out/runs" -o "$out" | tee "$out/validate.log"
grep -q "runs: 27 fitting, 9 hold-out, 0 not done" "$out/validate.log" || fail "validate did not see every run"
for n in 1 2 3; do grep -q "^finding $n: " "$out/validate.log" || fail "finding $n missing"; done
grep -q "predicted optimum: S" "$out/validate.log" || fail "no predicted optimum"
test -s "$out/validation.json" && test -s "$out/law.toml" && test -s "$out/runs.csv" || fail "validate outputs missing"
# --name and --profile replace the study file's keys (one study file serves several machines).
"$moecast" validate configs/studies/smoke.toml --out "$out/runs" --no-train --json --name smoke-renamed \
    --profile profiles/cpu-amd-epyc-vm.toml > "$out/override.json"
grep -q '"name": "smoke-renamed"' "$out/override.json" || fail "validate --name not applied"
grep -q '"profile": "profiles/cpu-amd-epyc-vm.toml"' "$out/override.json" || fail "validate --profile not applied"

"$moecast" report configs/studies/smoke.toml --out "$out/runs" -o "$out/report.html" | tee "$out/report.log"
test -s "$out/report.html" && test -s "$out/runs.json" || fail "report outputs missing"
test "$(wc -l < "$out/runs.csv")" -eq 37 || fail "runs.csv should have 36 rows and a header"
test "$(grep -o '<svg ' "$out/report.html" | wc -l)" -ge 3 || fail "report has fewer than 3 charts"
echo "smoke study OK"
