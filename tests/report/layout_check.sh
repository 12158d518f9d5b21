#!/usr/bin/env bash
# Renders a report page (.html) or a chart file (.svg) in headless Chromium with a measuring script
# injected into a copy (never into the file itself) and fails when
#   - two text boxes of a chart overlap, or a text box sticks out of its chart;
#   - a curve, marker or bar lies outside its plot area (g.data against rect.plot-area);
#   - Chromium logs a console or script error, or the page has no chart;
#   - with --summary PX: the page's #summary (its answer) does not end within the first PX pixels.
# With --screenshot OUT.png it also writes a screenshot of the first WxH pixels (--window WxH,
# default 1240x1000; --full: the whole page's height). Exit 77 (ctest: skipped) when chromium is
# not installed.
# Usage: layout_check.sh FILE [--summary PX] [--screenshot OUT.png] [--window WxH] [--full]
set -euo pipefail
file=$(realpath "$1")
shift
summary=0
shot=""
window=1240,1000
full=0
while [ $# -gt 0 ]; do
    case "$1" in
    --summary) summary=$2; shift 2 ;;
    --screenshot) shot=$2; shift 2 ;;
    --window) window=${2/x/,}; shift 2 ;;
    --full) full=1; shift ;;
    *) echo "layout_check.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "SKIP: chromium is not installed (scripts/setup installs it)"
    exit 77
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

measure='<script>
(function () {
  const lines = [];
  let texts = 0, overlaps = 0, cut = 0, outside = 0, charts = 0;
  // Overlap: boxes sharing more than 1 px of height that are less than 2 px apart sideways.
  const inter = (a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > -2 &&
                          Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 1;
  const name = (e) => JSON.stringify(e.textContent.slice(0, 40));
  document.querySelectorAll("svg").forEach((svg) => {
    const box = svg.getBoundingClientRect();
    const t = [...svg.querySelectorAll("text")].map((e) => ({ e, r: e.getBoundingClientRect() }))
                                               .filter((x) => x.r.width > 0 && x.r.height > 0);
    texts += t.length;
    for (let i = 0; i < t.length; ++i) {
      const r = t[i].r;
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
        ++cut; lines.push("cut: " + name(t[i].e));
      }
      for (let j = i + 1; j < t.length; ++j)
        if (inter(r, t[j].r)) { ++overlaps; lines.push("overlap: " + name(t[i].e) + " " + name(t[j].e)); }
    }
    svg.querySelectorAll("g.chart").forEach((g) => {
      ++charts;
      const a = g.querySelector("rect.plot-area").getBoundingClientRect();
      g.querySelectorAll("g.data > *").forEach((e) => {
        const r = e.getBoundingClientRect();
        const tol = e.tagName === "circle" ? 7 : 1.5;
        if (r.left < a.left - tol || r.right > a.right + tol || r.top < a.top - tol || r.bottom > a.bottom + tol) {
          ++outside; lines.push("outside: " + e.tagName + " " + (e.getAttribute("points") || "").slice(0, 60));
        }
      });
    });
  });
  const height = Math.ceil(document.body.getBoundingClientRect().bottom + window.scrollY) + 16;
  const s = document.getElementById("summary");
  const bottom = s ? Math.round(s.getBoundingClientRect().bottom + window.scrollY) : -1;
  const pre = document.createElement("pre");
  pre.id = "layout-check";
  pre.textContent = ["charts " + charts, "texts " + texts, "overlaps " + overlaps, "cut " + cut,
                     "outside " + outside, "summary_bottom " + bottom,
                     "page_height " + height].concat(lines).join("\n");
  document.body.appendChild(pre);
})();
</script>'
case "$file" in
*.svg) { echo '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">'
         grep -v '^<?xml' "$file"; echo "</body></html>"; } > "$work/page.html" ;;
*) cp "$file" "$work/page.html" ;;
esac
cp "$work/page.html" "$work/shot.html"
# The script goes in before the last </body> of the copy.
html=$(cat "$work/page.html")
printf '%s\n%s\n</body>%s\n' "${html%</body>*}" "$measure" "${html##*</body>}" > "$work/page.html"
flags=(--headless --no-sandbox --disable-gpu --no-first-run --user-data-dir="$work/profile"
       --enable-logging=stderr --v=0 --hide-scrollbars)
timeout 120 "$browser" "${flags[@]}" --window-size=1240,4000 --virtual-time-budget=5000 --dump-dom \
    "file://$work/page.html" > "$work/dom.html" 2> "$work/dom.err" || {
    cat "$work/dom.err" >&2; echo "FAIL: chromium --dump-dom failed" >&2; exit 1; }
if grep -E 'CONSOLE|Uncaught|net::ERR_|Failed to load' "$work/dom.err"; then
    echo "FAIL: $file: errors while loading the page" >&2; exit 1
fi
report=$(sed -n '/<pre id="layout-check">/,/<\/pre>/p' "$work/dom.html" |
    sed -e 's/.*<pre id="layout-check">//' -e 's/<\/pre>.*//' \
        -e 's/&quot;/"/g' -e 's/&lt;/</g' -e 's/&gt;/>/g' -e 's/&amp;/\&/g')
[ -n "$report" ] || report="no result: the measuring script did not run"
value() { echo "$report" | awk -v k="$1" '$1 == k { print $2 }'; }
charts=$(value charts); overlaps=$(value overlaps); cut=$(value cut); outside=$(value outside)
bottom=$(value summary_bottom)
echo "$file: $charts charts, $(value texts) texts, $overlaps overlapping, $cut cut off, $outside outside the plot area, summary ends at ${bottom} px"
status=0
[ -n "$charts" ] || { echo "$report" >&2; echo "FAIL: no measurement" >&2; exit 1; }
[ "$charts" -ge 1 ] || { echo "FAIL: no chart" >&2; status=1; }
if [ "$overlaps" != 0 ] || [ "$cut" != 0 ] || [ "$outside" != 0 ]; then
    echo "$report" | grep -E '^(overlap|cut|outside): ' >&2
    echo "FAIL: overlapping text or data outside the plot area" >&2
    status=1
fi
if [ "$summary" -gt 0 ] && { [ "$bottom" -lt 0 ] || [ "$bottom" -gt "$summary" ]; }; then
    echo "FAIL: the summary (#summary) must end within the first $summary px, ends at $bottom" >&2
    status=1
fi
if [ -n "$shot" ]; then
    [ $full -eq 1 ] && window="${window%,*},$(value page_height)"
    timeout 120 "$browser" "${flags[@]}" --window-size="$window" --screenshot="$work/shot.png" \
        "file://$work/shot.html" > /dev/null 2> "$work/shot.err" || {
        cat "$work/shot.err" >&2; echo "FAIL: chromium --screenshot failed" >&2; exit 1; }
    cp "$work/shot.png" "$shot"
fi
exit $status
