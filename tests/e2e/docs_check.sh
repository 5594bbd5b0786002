# The documentation stays true to the repository:
#  1. `slimtrain inspect --ops` lists the op registry (text and --json agree,
#     sorted, the ops every test model uses are there), and rejects a MODEL
#     next to --ops (exit 2);
#  2. docs/MODELS.md's op list equals it (scripts/ops_doc.py --check);
#  3. README.md and docs/*.md link nothing outside the repository: no
#     absolute /work or /home paths, no ../shared, every relative link
#     resolves to a file or folder inside the repository.
# Usage: docs_check.sh SLIMTRAIN
source "$(dirname "$0")/common.sh"
BIN=$1
SRC=$SLIM_SOURCE_DIR
PY=/usr/bin/python3

text=$("$BIN" inspect --ops) || fail "inspect --ops failed"
json=$("$BIN" inspect --ops --json) || fail "inspect --ops --json failed"
"$PY" - "$text" "$json" <<'EOF' || fail "inspect --ops: text and --json disagree"
import json, sys
text, js = sys.argv[1].split(), json.loads(sys.argv[2])["ops"]
assert text == js, (text, js)
assert js == sorted(js) and len(set(js)) == len(js), "not sorted or not unique"
for op in ("Conv", "BatchNormalization", "Gemm", "Relu", "QuantizeLinear", "DequantizeLinear"):
    assert op in js, f"{op} missing"
print(f"inspect --ops: {len(js)} op types, text == --json")
EOF
rc=0; "$BIN" inspect --ops some.onnx > /dev/null 2>err.txt || rc=$?
[ $rc = 2 ] || fail "inspect --ops MODEL exited $rc, expected 2"
grep -q "no MODEL" err.txt || fail "inspect --ops MODEL: message does not say why: $(cat err.txt)"

"$PY" "$SRC/scripts/ops_doc.py" "$BIN" --check "$SRC/docs/MODELS.md" ||
  fail "docs/MODELS.md's op list is stale"

"$PY" - "$SRC" <<'EOF' || fail "a document links outside the repository or to a file that does not exist"
import os, re, sys
root = os.path.realpath(sys.argv[1])
docs = [os.path.join(root, "README.md")] + sorted(
    os.path.join(root, "docs", f) for f in os.listdir(os.path.join(root, "docs")) if f.endswith(".md"))
bad = []
link = re.compile(r"\]\(([^)\s]+)\)")
for path in docs:
    rel = os.path.relpath(path, root)
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        if re.search(r"\.\./shared|(?<![\w.])/work/|(?<![\w.])/home/", line):
            bad.append(f"{rel}:{n}: a path outside the repository: {line.strip()}")
        for target in link.findall(line):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor on the same page
            file = target.split("#", 1)[0]
            full = os.path.realpath(os.path.join(os.path.dirname(path), file))
            if not (full == root or full.startswith(root + os.sep)):
                bad.append(f"{rel}:{n}: link '{target}' points outside the repository")
            elif not os.path.exists(full):
                bad.append(f"{rel}:{n}: link '{target}': {os.path.relpath(full, root)} does not exist")
for b in bad:
    print(b)
print(f"checked {len(docs)} documents: {len(bad)} problem(s)")
sys.exit(1 if bad else 0)
EOF
echo "PASS"
