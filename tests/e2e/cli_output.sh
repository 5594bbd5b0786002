# What a person sees while a compression runs (the small ACT job):
# 1. the default log (stderr, not a terminal) holds fewer than 20 lines
#    before the first progress line;
# 2. --quiet prints nothing on stderr and only the final summary (one JSON
#    line) on stdout;
# 3. on a terminal (captured with `script`, with frequent bar redraws and
#    checkpoint lines between them) the screen shows no garbled line: after
#    replaying carriage returns and erase-line codes as a terminal does, each
#    progress bar line ends with its own status, and no log line carries a
#    bar.
source "$(dirname "$0")/common.sh"
BIN=$1
need_data
command -v script > /dev/null || { echo "SKIP: script (util-linux) missing"; exit 77; }
export SLIM_ORT_SCRIPT=/nonexistent  # the ONNX Runtime check is tested elsewhere
OUT=$PWD/cli_output; rm -rf "$OUT"; mkdir -p "$OUT"
CFG=$SLIM_SOURCE_DIR/tests/e2e/configs/act_small.yaml
common=(--set Checkpoint.resume=never --set TrainConfig.eval_iter=30)

"$BIN" compress "$CFG" "${common[@]}" --set Global.save_dir="$OUT/default" \
  > "$OUT/default.out" 2> "$OUT/default.err" || { cat "$OUT/default.err"; fail "compress failed"; }
before=$(awk '/^train +[0-9]+% [0-9]+\/[0-9]+ \[/ {exit} {n++} END {print n+0}' "$OUT/default.err")
grep -qE '^train +[0-9]+% ' "$OUT/default.err" || fail "no progress line in the default output"
echo "default output: $before lines before the first progress line:"
awk '/^train +[0-9]+% [0-9]+\/[0-9]+ \[/ {exit} {print "  | " $0}' "$OUT/default.err"
[ "$before" -lt 20 ] || fail "$before lines before the progress line (want < 20)"

"$BIN" compress "$CFG" "${common[@]}" --set Global.save_dir="$OUT/quiet" --quiet \
  > "$OUT/quiet.out" 2> "$OUT/quiet.err" || { cat "$OUT/quiet.err"; fail "compress --quiet failed"; }
[ ! -s "$OUT/quiet.err" ] || { cat "$OUT/quiet.err"; fail "--quiet wrote to stderr"; }
[ "$(wc -l < "$OUT/quiet.out")" = 1 ] || { cat "$OUT/quiet.out"; fail "--quiet stdout is not one line"; }
/usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["command"] == "compress"' \
  "$OUT/quiet.out" || fail "--quiet stdout is not the JSON summary"
echo "--quiet: stderr empty, stdout one JSON line"

# On a terminal: a bar redraw at every iteration, a checkpoint line every 5.
printf '%q ' "$BIN" compress "$CFG" "${common[@]}" --set Global.save_dir="$OUT/tty" \
  --set TrainConfig.logging_iter=1 --set Checkpoint.every_iters=5 > "$OUT/cmd.sh"
script -q -e -c "bash $OUT/cmd.sh" "$OUT/typescript" > /dev/null 2>&1 < /dev/null ||
  { cat "$OUT/typescript"; fail "compress on a terminal failed"; }
/usr/bin/python3 - "$OUT/typescript" <<'EOF' || fail "garbled terminal output"
import re, sys
raw = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
raw = raw.split("\n", 1)[1] if raw.startswith("Script started") else raw
# Replay: \r moves to column 0, ESC[K / ESC[0K erase to the end of the line,
# ESC[2K erases the line, other escapes are ignored; printable characters
# overwrite from the cursor; \n ends the line.
lines, line, col, i = [], [], 0, 0
while i < len(raw):
    c = raw[i]
    if c == "\x1b":
        m = re.match(r"\x1b\[([0-9;?]*)([A-Za-z])", raw[i:])
        if m:
            if m.group(2) == "K":
                line = [] if m.group(1) == "2" else line[:col]
            i += m.end()
            continue
    elif c == "\r":
        col = 0
    elif c == "\n":
        lines.append("".join(line)); line, col = [], 0
    elif c >= " ":
        if col < len(line): line[col] = c
        else: line.append(c)
        col += 1
    i += 1
if line: lines.append("".join(line))
lines = [l for l in lines if not l.startswith("Script done")]
BAR = re.compile(r"\|[# ]{24}\|")
STATUS = (r"(loss [-0-9.e+naif]+ lr [-0-9.e+]+ [0-9]+ img/s( top1 [0-9.]+)?"
          r"|(done|stopped on a signal|target_metric reached): .*)")
GOOD = re.compile(r"^\|[# ]{24}\| train +[0-9]+% [0-9]+/[0-9]+ \[[^\]]*\] " + STATUS + "$")
bars = 0
for n, l in enumerate(lines):
    if BAR.search(l):
        bars += 1
        assert GOOD.match(l) and len(BAR.findall(l)) == 1, f"line {n + 1} is garbled: {l!r}"
assert bars > 0, "no progress bar on the terminal"
assert any(l.startswith("checkpoint ") for l in lines), "no checkpoint line on the terminal"
assert any(l.startswith("{") for l in lines), "no JSON summary on the terminal"
print(f"terminal: {len(lines)} lines, {bars} with the bar, none garbled")
EOF
echo "PASS"
