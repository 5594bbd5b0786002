# The compression report a person opens (report.html + plots/*.svg) loads in
# headless Chromium: its inline self-check script ran (body data-plots set),
# every plot the run has data for is an <svg> on the page, no console error,
# and a screenshot renders; every chart has x and y axis labels, no label is
# an exporter name (onnx::...), the per-layer bars are named after the
# model's nodes, coinciding series differ in dashes, and the one-point top-1
# chart (one evaluation, at the end) spans a narrow range inside 0..100 %.
# Exits 77 (skip) without Chromium.
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
CHROME=$(command -v chromium || command -v chromium-browser || true)
[ -n "$CHROME" ] || { echo "SKIP: chromium missing (Debian package chromium; scripts/test installs it)"; exit 77; }
export SLIM_ORT_SCRIPT=/nonexistent  # the parity gate is tested elsewhere
OUT=$PWD/report_page; rm -rf "$OUT"; mkdir -p "$OUT"
"$BIN" compress "$SLIM_SOURCE_DIR/tests/e2e/configs/act_small.yaml" --set Global.save_dir="$OUT/run" \
  --set Checkpoint.resume=never --set TrainConfig.eval_iter=1000 > "$OUT/run.log" 2>&1 ||
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
"$BIN" inspect zoo:mobilenet_tiny --json > "$OUT/inspect.json" || fail "inspect failed"
/usr/bin/python3 - "$OUT/dom.html" "$OUT/run/report.json" "$OUT/inspect.json" <<'EOF' || fail "chart check failed"
import json, re, sys
from html import unescape
dom, rep, ins = open(sys.argv[1]).read(), json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
figs = dict(re.findall(r'<figure id="([a-z_0-9]+)">(.*?)</figure>', dom, re.S))
assert len(figs) >= 7, f"figures: {sorted(figs)}"
for name, fig in figs.items():
    for axis in ("x", "y"):
        m = re.search(r'class="axis-label %s"[^>]*>([^<]+)</text>' % axis, fig)
        assert m and m.group(1).strip(), f"{name}: no {axis}-axis label"
    assert re.search(r'class="axis-label y"[^>]*>[^<]*\(', fig), f"{name}: y label has no unit"
    labels = [unescape(t) for t in re.findall(r'class="(?:legend|bar-label)"[^>]*><title>([^<]*)</title>', fig)]
    raw = [l for l in labels if l.startswith("onnx::")]
    assert not raw, f"{name}: raw exporter names as labels: {raw[:3]}"
nodes = {t["node"] for t in ins["tensors"]} | {t["name"] for t in ins["tensors"]}
bars = [unescape(t) for t in re.findall(r'class="bar-label"[^>]*><title>([^<]*)</title>', figs["layer_sparsity"])]
assert bars and all(b in nodes for b in bars), f"sparsity bars not named after layers: {bars[:3]}"
def series(fig):  # name -> dashed?
    return {unescape(n): "stroke-dasharray" in body for n, body in
            re.findall(r'<g class="series" data-name="([^"]*)"><polyline([^>]*)>', fig)}
gmp = series(figs["gmp"])
assert gmp == {"achieved sparsity": False, "planned ratio": True}, f"gmp series: {gmp}"
loss = series(figs["loss"])
assert not loss["loss"] and all(d for n, d in loss.items() if n != "loss"), f"loss series: {loss}"
top1 = figs["top1"]
lo = float(re.search(r'data-ymin="([^"]+)"', top1).group(1))
hi = float(re.search(r'data-ymax="([^"]+)"', top1).group(1))
pts = [100 * rep["teacher_top1"], 100 * rep["student_top1"]]
assert 0 <= lo <= min(pts) and max(pts) <= hi <= 100 and hi - lo <= 50, f"top-1 y range {lo}..{hi} for {pts}"
print(f"charts: {len(figs)} with axis labels, {len(bars)} layer-named bars, top-1 range {lo}..{hi} for {pts}")
EOF
chrome --window-size=800,3200 --screenshot="$OUT/page.png" 2>> "$OUT/chrome.err" > /dev/null ||
  { cat "$OUT/chrome.err"; fail "screenshot failed"; }
size=$(stat -c %s "$OUT/page.png")
[ "$size" -gt 50000 ] || fail "screenshot is $size bytes: the page rendered (nearly) blank"
echo "report.html: $want plots in the DOM, self-check ran, no console errors, screenshot $size bytes"
echo "PASS"
