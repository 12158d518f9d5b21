#!/usr/bin/env bash
# Renders a study report in headless Chromium: the DOM after load must hold the report's charts
# (every <svg> of the file) and its run table, Chromium must log no console or network errors,
# and a screenshot must be produced. Exit 77 (ctest: skipped) when chromium is not installed.
# Usage: browser_test.sh REPORT.html
set -euo pipefail
report=$(realpath "$1")
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "SKIP: chromium is not installed (scripts/setup installs it)"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$work/profile"
       --enable-logging=stderr --v=0 --window-size=1200,4000)
timeout 120 "$browser" "${flags[@]}" --dump-dom "file://$report" > "$work/dom.html" 2> "$work/dom.err" || {
    cat "$work/dom.err" >&2; echo "FAIL: chromium --dump-dom failed" >&2; exit 1; }
timeout 120 "$browser" "${flags[@]}" --screenshot="$work/page.png" "file://$report" > /dev/null 2> "$work/shot.err" || {
    cat "$work/shot.err" >&2; echo "FAIL: chromium --screenshot failed" >&2; exit 1; }

expected=$(grep -o '<svg ' "$report" | wc -l)
rendered=$(grep -o '<svg ' "$work/dom.html" | wc -l)
echo "charts: $expected in the file, $rendered in the rendered DOM"
[ "$expected" -ge 3 ] || { echo "FAIL: the report has fewer than 3 charts" >&2; exit 1; }
[ "$rendered" -eq "$expected" ] || { echo "FAIL: the DOM lost charts" >&2; exit 1; }
grep -q '<polyline\|<circle' "$work/dom.html" || { echo "FAIL: charts have no data" >&2; exit 1; }
grep -q '<table>' "$work/dom.html" || { echo "FAIL: no run table" >&2; exit 1; }
if grep -E 'CONSOLE|Uncaught|net::ERR_|Failed to load' "$work/dom.err" "$work/shot.err"; then
    echo "FAIL: errors while loading the page" >&2; exit 1
fi
size=$(stat -c %s "$work/page.png" 2>/dev/null || echo 0)
echo "screenshot: $size bytes"
[ "$size" -gt 20000 ] || { echo "FAIL: screenshot missing or blank" >&2; exit 1; }
echo "browser test OK"
