#!/usr/bin/python3
"""Compares two slimtrain checkpoints dataset by dataset.

usage: h5compare.py A.h5 B.h5 --groups params,buffers --rtol 1e-4   (tolerance)
       h5compare.py A.h5 B.h5 --exact                              (bytes equal)
For each dataset in the groups: max|a-b| / max(max|b|, 1e-12) <= rtol.
Prints the worst tensors; exits 1 on a mismatch or a missing dataset."""
import argparse
import sys

import h5py
import numpy as np


def datasets(f, groups):
    out = {}
    for g in groups:
        if g not in f:
            continue
        for k, d in f[g].items():
            if isinstance(d, h5py.Dataset):
                out[f"{g}/{d.attrs.get('name', k)}"] = d[()]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--groups", default="params,buffers,masks,quant,optimizer")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--exact", action="store_true")
    a = ap.parse_args()
    groups = a.groups.split(",")
    with h5py.File(a.a, "r") as fa, h5py.File(a.b, "r") as fb:
        da, db = datasets(fa, groups), datasets(fb, groups)
    if set(da) != set(db):
        print("dataset sets differ:", sorted(set(da) ^ set(db))[:10])
        return 1
    worst, bad = [], 0
    for k in sorted(da):
        x, y = np.asarray(da[k]), np.asarray(db[k])
        if x.shape != y.shape:
            print(f"{k}: shape {x.shape} vs {y.shape}")
            bad += 1
            continue
        if a.exact:
            if x.tobytes() != y.tobytes():
                print(f"{k}: bytes differ")
                bad += 1
            continue
        x64, y64 = x.astype(np.float64), y.astype(np.float64)
        rel = np.max(np.abs(x64 - y64)) / max(np.max(np.abs(y64)), 1e-12) if x.size else 0.0
        worst.append((rel, k))
        if rel > a.rtol:
            bad += 1
    worst.sort(reverse=True)
    for rel, k in worst[:int(__import__("os").environ.get("TOPN","5"))]:
        print(f"  {k}: relative difference {rel:.3g}")
    print(f"compared {len(da)} datasets ({','.join(groups)}): {bad} mismatching"
          + ("" if a.exact else f" (rtol {a.rtol})"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
