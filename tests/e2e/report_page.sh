# The compression report a person opens (report.html + plots/*.svg) loads in
# headless Chromium: its inline self-check script ran (body data-plots set),
# every plot the run has data for is an <svg> on the page, no console error,
# and a screenshot renders. Exits 77 (skip) without Chromium.
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || { echo "SKIP: chromium missing (Debian package chromium; scripts/test installs it)"; exit 77; }
export SLIM_ORT_SCRIPT=/nonexistent  # the parity gate is tested elsewhere
OUT=$PWD/report_page; rm -rf "$OUT"; mkdir -p "$OUT"
"$BIN" compress "$SLIM_SOURCE_DIR/tests/e2e/configs/act_small.yaml" --set Global.save_dir="$OUT/run" \
  --set Checkpoint.resume=never --set TrainConfig.eval_iter=20 > "$OUT/run.log" 2>&1 ||
  { cat "$OUT/run.log"; fail "compress failed"; }
page=$OUT/run/report.html
[ -f "$page" ] || fail "no report.html"
# loss, lr, GMP schedule, per-layer sparsity, activation scales, PACT alphas, eval top-1
want=7
svgs=$(ls "$OUT"/run/plots/*.svg | wc -l)
[ "$svgs" = "$want" ] || fail "$svgs plots/*.svg files, expected $want"
chrome() { timeout 120 "$CHROME" --headless --no-sandbox --disable-gpu --hide-scrollbars \
  --enable-logging=stderr --v=0 "$@" "file://$page"; }
chrome --dump-dom > "$OUT/dom.html" 2> "$OUT/chrome.err" || { cat "$OUT/chrome.err"; fail "chromium failed"; }
grep -q "data-plots=\"$want\"" "$OUT/dom.html" || fail "the page's self-check did not count $want plots"
[ "$(grep -o '<svg[^>]*class="plot"' "$OUT/dom.html" | wc -l)" = "$want" ] || fail "the DOM lacks $want plot SVGs"
if grep -E "CONSOLE|Uncaught" "$OUT/chrome.err"; then fail "console errors while loading the page"; fi
# The summary table at the top shows report.json's numbers: every value cell
# names its key; the rendered DOM must hold the same value as the file.
/usr/bin/python3 - "$OUT/dom.html" "$OUT/run/report.json" <<'EOF' || fail "the summary table disagrees with report.json"
import json, re, sys
dom, rep = open(sys.argv[1]).read(), json.load(open(sys.argv[2]))
cells = re.findall(r'data-key="([^"]+)" data-value="([^"]*)"', dom)
want = {"teacher_top1", "student_top1", "export_top1", "size_ratio", "images_per_s", "sparsity.overall"}
missing = want - {k for k, _ in cells}
assert not missing, f"summary lacks {missing}"
for key, shown in cells:
    v = rep
    for part in key.split("."):
        v = v[part]
    if isinstance(v, str):
        import html
        assert html.unescape(shown) == v, f"{key}: page {shown!r}, report.json {v!r}"
    else:
        assert abs(float(shown) - float(v)) <= 1e-9 * max(1, abs(float(v))), f"{key}: page {shown}, report.json {v}"
print(f"summary table: {len(cells)} values equal report.json's")
EOF
grep -q '<details><summary>report.json</summary>' "$OUT/dom.html" || fail "no collapsible report.json block"
chrome --window-size=800,3200 --screenshot="$OUT/page.png" 2>> "$OUT/chrome.err" > /dev/null ||
  { cat "$OUT/chrome.err"; fail "screenshot failed"; }
size=$(stat -c %s "$OUT/page.png")
[ "$size" -gt 50000 ] || fail "screenshot is $size bytes: the page rendered (nearly) blank"
echo "report.html: $want plots in the DOM, self-check ran, no console errors, screenshot $size bytes"
echo "PASS"
