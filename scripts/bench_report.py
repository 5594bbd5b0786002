#!/usr/bin/env python3
"""Summarises scripts/bench's rows: prints the table and the ratios, writes
bench.json, and rewrites the "## Training step" section of docs/PERFORMANCE.md
(only that section) with the date, the host's CPU and the commit.

  bench_report.py OUT.json PERFORMANCE.md COMMIT ROW_JSON...  (scripts/bench)
  bench_report.py --from BENCH.json PERFORMANCE.md COMMIT     (regenerate the
      section from a saved bench.json without running anything)
"""
import datetime
import json
import math
import os
import re
import sys

SECTION = "## Training step"


def short(m):  # zoo:x, /path/x.onnx -> x
    return m.replace("zoo:", "").rsplit("/", 1)[-1].removesuffix(".onnx")


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


def rng(v, fmt=None):  # "a-b" over the rounds, or the one value
    lo, hi = min(v), max(v)
    fmt = fmt or ("{:.0f}" if lo >= 100 else "{:.1f}")
    return fmt.format(lo) if fmt.format(lo) == fmt.format(hi) else fmt.format(lo) + "-" + fmt.format(hi)


def ratio_pairs(ss, ts):
    """slimtrain / PyTorch: the k-th rows of each side (rounds) when the counts
    match, every combination otherwise (mobilenet_v2 ACT: PyTorch before and
    after slimtrain)."""
    combos = zip(ss, ts) if len(ss) == len(ts) else [(s, t) for s in ss for t in ts]
    return [s["images_per_s"] / t["images_per_s"] for s, t in combos]


def summary_lines(rows):
    """The lines scripts/bench has always printed after its table."""
    out = []
    slim = [r for r in rows if r["framework"] == "slimtrain"]
    torch = [r for r in rows if r["framework"] == "pytorch"]
    pairs = {}
    for s in slim:
        if s.get("ranks", 1) == 1:
            pairs.setdefault((short(s["model"]), s["batch"], s["threads"]), [[], []])[0].append(s)
    for t in torch:
        if (t["model"], t["batch"], t["threads"]) in pairs:
            pairs[(t["model"], t["batch"], t["threads"])][1].append(t)
    for (m, b, th), (ss, ts) in pairs.items():
        ratios = ratio_pairs(ss, ts)
        if ratios:
            each = ", ".join(f"{x:.2f}" for x in ratios)
            out.append(f"slimtrain / PyTorch, {m}, batch {b}, {th} thread(s): {median(ratios):.2f}x"
                       + (f" (median of {len(ratios)}: {each})" if len(ratios) > 1 else ""))
    act = {}
    for r in rows:
        if r["model"] == "act:mobilenet_tiny" and r["framework"] == "slimtrain":
            act.setdefault((r["ranks"], r["threads"]), []).append(r["images_per_s"])
    for ranks, th in [(2, 1), (1, 2)]:
        if (1, 1) in act and (ranks, th) in act:
            base, wide = act[(1, 1)], act[(ranks, th)]
            scale = [b / a for a, b in zip(base, wide)]
            out.append(f"ACT step scaling, {ranks} rank(s) x {th} thread(s) / 1 rank x 1 thread: "
                       f"{median(scale):.2f}x (median of {len(scale)}; {median(base):.0f} -> "
                       f"{median(wide):.0f} img/s)")
    # The ACT step's FLOPs: teacher forward + student forward and backward = 4
    # forwards (the FP32 step's 3); fake quant, PACT and masks are not counted.
    groups = {}
    for r in slim:
        groups.setdefault((short(r["model"]), r.get("ranks", 1), r["threads"]), []).append(r)
    fp32 = {m: rs for (m, _, th), rs in groups.items() if th == 2 and rs[0].get("step_gflop")}
    peak = next((r["probe_gflops_1core"] for r in slim if r.get("probe_gflops_1core")), None)
    if peak:
        out.append(f"measured 1-core FMA peak: {peak:.1f} GFLOP/s")
    for (m, ranks, th), rs in groups.items():
        ips = median([r["images_per_s"] for r in rs])
        if m.startswith("act:") and m[4:] in fp32 and peak:
            f = fp32[m[4:]][0]
            g = f["step_gflop"] / 3 * 4 / f["batch"] * ips
            cores = th * ranks
            out.append(f"slimtrain ACT step {m[4:]} ({ranks} rank(s) x {th} thread(s)): {g:.1f} GFLOP/s = "
                       f"{100 * g / (peak * cores):.1f}% of the measured {cores}-core FMA peak")
        if m in fp32 and th == 2 and peak:
            g = median([r["gflops_per_s"] for r in rs])
            out.append(f"slimtrain FP32 step {m} (2 threads): {g:.1f} GFLOP/s = "
                       f"{100 * g / (2 * peak):.1f}% of the measured 2-core FMA peak")
    for (name, b), (int8, fp) in ort_pairs(rows).items():
        out.append(f"ONNX Runtime {name} batch {b}: {int8['prec'].upper()} {int8['ms']:.2f} ms vs FP32 "
                   f"{fp['ms']:.2f} ms = {fp['ms'] / int8['ms']:.2f}x (median of {int8['n']}); initializers "
                   f"{fp['bytes']} -> {int8['bytes']} bytes ({fp['bytes'] / int8['bytes']:.2f}x smaller)")
    return out


def ort_pairs(rows):
    """(model, batch) -> (quantized, fp32): median ms per batch over the rounds."""
    ort = {}
    for r in rows:
        if r["framework"] == "onnxruntime":
            ort.setdefault((r["model"], r["batch"]), []).append(r)
    res = {}
    for (m, b), rs in sorted(ort.items()):
        name, prec = m[4:].rsplit(":", 1)
        fs = ort.get((f"ort:{name}:fp32", b))
        if prec != "fp32" and fs:
            q = {"prec": prec, "ms": median([x["ms_per_batch"] for x in rs]), "n": len(rs),
                 "bytes": rs[0]["initializer_bytes"]}
            f = {"ms": median([x["ms_per_batch"] for x in fs]), "bytes": fs[0]["initializer_bytes"]}
            res[(f"{name} {prec}", b)] = (q, f)
    return res


def mb(rs):
    v = [r["peak_rss_mb"] for r in rs if not math.isnan(r.get("peak_rss_mb", math.nan))]
    return rng(v, "{:.0f}") if v else ""


def section(rows, commit, now, cpu, cores):
    """The "## Training step" section of docs/PERFORMANCE.md."""
    slim = [r for r in rows if r["framework"] == "slimtrain"]
    torch = [r for r in rows if r["framework"] == "pytorch"]
    L = [SECTION, "",
         f"Measured {now} on {cpu} ({cores} cores), commit {commit}, by `scripts/bench` "
         "(this section is regenerated by each run; the host may be shared, so numbers move with its "
         "load). Images per second of the median step; ranges over the interleaved rounds; the ratio "
         "is the median of the per-round ratios (listed).", "",
         "| step | slimtrain img/s | PyTorch img/s | slimtrain / PyTorch | peak MB slimtrain / PyTorch |",
         "|---|---|---|---|---|"]
    settings = []  # (label, slimtrain model key, ranks, threads, batch)
    for r in slim:
        key = (short(r["model"]), r.get("ranks", 1), r["threads"], r["batch"])
        if key not in settings:
            settings.append(key)
    for m, ranks, th, b in settings:
        ss = [r for r in slim if (short(r["model"]), r.get("ranks", 1), r["threads"], r["batch"]) == (m, ranks, th, b)]
        ts = [t for t in torch if (t["model"], t["batch"], t["threads"]) == (m, b, th)] if ranks == 1 else []
        kind, model = ("ACT", m[4:]) if m.startswith("act:") else ("FP32", m)
        where = f"{ranks} ranks x {th} thread" + ("s" if th > 1 else "") if ranks > 1 else \
            f"{th} thread" + ("s" if th > 1 else "")
        ratios = ratio_pairs(ss, ts) if ts else []
        rat = f"{median(ratios):.2f}x ({', '.join(f'{x:.2f}' for x in ratios)})" if ratios else ""
        pm = f"{mb(ss)} / {mb(ts)}" if mb(ss) or mb(ts) else ""
        L.append(f"| {kind}, {model}, batch {b}, {where} | {rng([r['images_per_s'] for r in ss])} | "
                 f"{rng([t['images_per_s'] for t in ts]) if ts else ''} | {rat} | {pm} |")
    pairs = ort_pairs(rows)
    if pairs:
        L += ["", "ONNX Runtime (2 threads), the INT8 QDQ export against the FP32 model, median ms per batch:",
              "", "| model | batch | FP32 ms | INT8 ms | speed-up | initializer bytes FP32 -> INT8 |",
              "|---|---|---|---|---|---|"]
        for (name, b), (q, f) in pairs.items():
            L.append(f"| {name} | {b} | {f['ms']:.2f} | {q['ms']:.2f} | {f['ms'] / q['ms']:.2f}x | "
                     f"{f['bytes']} -> {q['bytes']} ({f['bytes'] / q['bytes']:.2f}x) |")
    extra = [x for x in summary_lines(rows) if not x.startswith(("slimtrain / PyTorch", "ONNX Runtime"))]
    if extra:
        L += [""] + [f"- {x}" for x in extra]
    return "\n".join(L) + "\n"


def replace_section(md_path, text, heading=SECTION):
    """Writes `text` in place of the section `heading` of md_path (up to the
    next "## " heading), or at the end when there is none."""
    doc = open(md_path).read() if os.path.exists(md_path) else "# Performance\n\n"
    m = re.search(r"^" + re.escape(heading) + r"[ \t]*$", doc, re.M)
    if m:  # up to the next "## " heading or the end
        nxt = re.search(r"^## ", doc[m.end():], re.M)
        end = m.end() + nxt.start() if nxt else len(doc)
        doc = doc[:m.start()] + text + ("\n" if nxt else "") + doc[end:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    open(md_path, "w").write(doc)


def main(argv):
    if len(argv) >= 4 and argv[1] == "--from":
        saved = json.load(open(argv[2]))
        rows, out, md, commit = saved["results"], None, argv[3], argv[4] if len(argv) > 4 else saved.get("commit", "unknown")
        now, cpu = saved.get("date", "unknown date"), saved.get("cpu", "unknown CPU")
        cores = saved.get("cores", "?")
    elif len(argv) >= 4:
        out, md, commit = argv[1], argv[2], argv[3]
        rows = [json.loads(r) for r in argv[4:]]
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")),
                   "unknown CPU")
        cores = os.cpu_count()
    else:
        sys.exit(__doc__)
    print()
    print(f"{'framework':<11} {'model':<24} {'batch':>5} {'ranks':>5} {'threads':>7} {'img/s':>9} {'GFLOP/s':>8} {'peak MB':>8}")
    for r in rows:
        print(f"{r['framework']:<11} {short(r['model']):<24} {r['batch']:>5} {r.get('ranks', 1):>5} "
              f"{r.get('threads', 1):>7} {r['images_per_s']:>9.1f} {r.get('gflops_per_s', float('nan')):>8.2f} "
              f"{r.get('peak_rss_mb', float('nan')):>8.1f}")
    for line in summary_lines(rows):
        print(line)
    text = section(rows, commit, now, cpu, cores)
    replace_section(md, text)
    print(f"wrote the '{SECTION}' section of {md}")
    if out:
        json.dump({"results": rows, "date": now, "cpu": cpu, "cores": cores, "commit": commit}, open(out, "w"), indent=1)
        print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv)
