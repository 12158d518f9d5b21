#!/usr/bin/env bash
# layout_check.sh on a chart built with its faults (colliding labels, a cut-off label, a curve out of
# the plot area) must fail and name each of them. Exit 77 when chromium is not installed.
# Usage: layout_faults_test.sh FAULTY.svg
set -uo pipefail
here=$(dirname "$0")
out=$("$here/layout_check.sh" "$1" 2>&1)
rc=$?
echo "$out"
[ $rc -eq 77 ] && exit 77
fail() { echo "FAIL: $*" >&2; exit 1; }
[ $rc -eq 1 ] || fail "layout_check.sh passed a faulty chart (exit $rc)"
echo "$out" | grep -q '^overlap: "200000" "300000"' || fail "the colliding tick labels were not reported"
echo "$out" | grep -q '^cut: "cut off"' || fail "the cut-off label was not reported"
echo "$out" | grep -q '^outside: polyline' || fail "the curve outside the plot area was not reported"
echo "layout check catches each fault"
