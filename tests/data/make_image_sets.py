#!/usr/bin/python3
"""Write small, deterministic image-classification test sets made from Fashion-MNIST.

Usage:
    make_image_sets.py OUT_DIR [--train N] [--eval N] [--seed S] [--no-png16]
                               [--fmnist DIR]

Why: slimtrain's image reader must accept what PaddleSlim ACT's example reader
(`data_dir/train_list.txt`, `relative/path label`) and torchvision's ImageFolder
accept, decode the usual zoo of JPEG/PNG variants exactly like PIL does, and fail
cleanly on broken input.  This script builds all of that from the 28x28 Fashion-MNIST
digits in a few seconds.

What it writes (N_train images from the Fashion-MNIST train set, N_eval from t10k,
picked by a seeded permutation; same seed => byte-identical files; re-running
replaces OUT_DIR/{imagefolder,act,broken}; ~3 s for the defaults, ~14 s for 10000/2000):

  OUT_DIR/imagefolder/{train,val}/<k>_<name>/<split>_<nnnnn>.<ext>
        torchvision ImageFolder layout.  Class folders are 0_tshirt 1_trouser
        2_pullover 3_dress 4_coat 5_sandal 6_shirt 7_sneaker 8_bag 9_ankle_boot, so
        sorted(folder names) == label order.  <nnnnn> is the index inside the split.
  OUT_DIR/act/{train_list.txt,val_list.txt}
        ACT `data_dir` layout: one "train/<k>_<name>/train_00012.jpg 3" per line
        (single space, '\n', paths relative to OUT_DIR/act).  OUT_DIR/act/train and
        OUT_DIR/act/val are real directories whose image files are HARD LINKS to the
        imagefolder files (falls back to copies across file systems), so the two
        layouts share the same bytes without symlinks.  train_list.txt is in a
        shuffled order (ACT shuffles once anyway); val_list.txt is in split-index
        order, i.e. the same order as the HDF5 export below.
  OUT_DIR/fmnist_eval_u8.h5, OUT_DIR/fmnist_eval_f32.h5
        the eval split's source digits in val_list.txt order: x (N,1,28,28) uint8 or
        float32 (= x/255 computed in float32), y (N,) int64.
  OUT_DIR/broken/...   error-path inputs; see broken/README.txt and broken/cases.json.
  OUT_DIR/manifest.json   counts per split/format/class, class names, per-file info.

Image variants (per image, from a per-image RNG seeded with (seed, split, index)):
  size: short side 40..160 px; ~35% non-square (aspect 0.5..2); resized from 28x28
  with PIL BICUBIC; colour = background + digit * tint (random colours).
    jpeg_rgb          58%  baseline RGB JPEG, quality 75..95, subsampling 4:2:0/4:2:2/4:4:4
    jpeg_gray         12%  mode L JPEG
    jpeg_progressive  10%  progressive RGB JPEG
    jpeg_cmyk          3%  CMYK JPEG written by PIL (Adobe APP14 marker; PIL reads it
                           back as CMYK and converts r = 255 - min(255, c + k*(255-c)/255))
    png_rgb            5%
    png_rgba           5%  alpha varies; RGB carries the full image (convert('RGB')
                           drops alpha without compositing, as torchvision does)
    png_palette        4%  mode P, adaptive 64-colour palette
    png_gray16         3%  16-bit grayscale PNG, value = g*257 (full range).  NOTE:
                           PIL opens it as mode I and convert('RGB') CLAMPS to 0..255,
                           so torchvision sees a near-binary silhouette; a decoder that
                           scales 16->8 bit (>>8) sees the real gray image.  Use
                           --no-png16 to replace these with png_rgb.
  ~8% of JPEGs use the extension .jpeg instead of .jpg.
"""
import argparse
import gzip
import io
import json
import os
import shutil
import struct
import sys
import time
import zlib

import numpy as np
from PIL import Image

CLASS_NAMES = ["0_tshirt", "1_trouser", "2_pullover", "3_dress", "4_coat",
               "5_sandal", "6_shirt", "7_sneaker", "8_bag", "9_ankle_boot"]
FMNIST_DIR = "/usr/share/datasets/fashion-mnist"

FORMATS = [  # (name, weight)
    ("jpeg_rgb", 0.58), ("jpeg_gray", 0.12), ("jpeg_progressive", 0.10),
    ("jpeg_cmyk", 0.03), ("png_rgb", 0.05), ("png_rgba", 0.05),
    ("png_palette", 0.04), ("png_gray16", 0.03),
]
SUBSAMPLING = [0, 1, 2]  # PIL: 0 = 4:4:4, 1 = 4:2:2, 2 = 4:2:0


def read_idx_gz(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def render(digit, rng, fmt):
    """Return (PIL image in the format's mode, save kwargs, extension, w, h)."""
    short = int(rng.integers(40, 161))
    if rng.random() < 0.35:
        aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
        w, h = (short, int(round(short * aspect))) if aspect >= 1 else \
               (int(round(short / aspect)), short)
        w, h = min(w, 320), min(h, 320)
    else:
        w = h = short
    g = Image.fromarray(digit, "L").resize((w, h), Image.BICUBIC)
    ga = np.asarray(g, np.float32)[..., None] / 255.0
    bg = rng.uniform(0, 90, 3).astype(np.float32)
    fg = rng.uniform(150, 255, 3).astype(np.float32)
    rgb = np.clip(bg * (1 - ga) + fg * ga + 0.5, 0, 255).astype(np.uint8)
    img = Image.fromarray(rgb, "RGB")
    q = int(rng.integers(75, 96))
    ext = ".jpeg" if rng.random() < 0.08 else ".jpg"
    if fmt == "jpeg_rgb":
        return img, dict(format="JPEG", quality=q,
                         subsampling=SUBSAMPLING[int(rng.integers(0, 3))]), ext, w, h
    if fmt == "jpeg_gray":
        return g, dict(format="JPEG", quality=q), ext, w, h
    if fmt == "jpeg_progressive":
        return img, dict(format="JPEG", quality=q, progressive=True), ext, w, h
    if fmt == "jpeg_cmyk":
        return img.convert("CMYK"), dict(format="JPEG", quality=q), ext, w, h
    if fmt == "png_rgb":
        return img, dict(format="PNG"), ".png", w, h
    if fmt == "png_rgba":
        alpha = rng.integers(64, 256, (h, w), dtype=np.uint8)
        rgba = np.dstack([rgb, alpha])
        return Image.fromarray(rgba, "RGBA"), dict(format="PNG"), ".png", w, h
    if fmt == "png_palette":
        return img.quantize(colors=64, method=Image.MEDIANCUT, dither=Image.NONE), \
            dict(format="PNG"), ".png", w, h
    if fmt == "png_gray16":
        v = (np.asarray(g, np.uint16) * 257).astype(np.uint16)
        return Image.fromarray(v, "I;16"), dict(format="PNG"), ".png", w, h
    raise ValueError(fmt)


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def make_split(out, split, digits, labels, seed, split_id, fmt_names, fmt_p):
    """Write imagefolder/<split>/ and act/<split>/ (hard links); return file records."""
    recs = []
    for k in CLASS_NAMES:
        os.makedirs(os.path.join(out, "imagefolder", split, k), exist_ok=True)
        os.makedirs(os.path.join(out, "act", split, k), exist_ok=True)
    for i in range(len(labels)):
        rng = np.random.default_rng([seed, split_id, i])
        fmt = fmt_names[int(rng.choice(len(fmt_names), p=fmt_p))]
        img, kw, ext, w, h = render(digits[i], rng, fmt)
        lab = int(labels[i])
        rel = f"{split}/{CLASS_NAMES[lab]}/{split}_{i:05d}{ext}"
        dst = os.path.join(out, "imagefolder", rel)
        img.save(dst, **kw)
        link_or_copy(dst, os.path.join(out, "act", rel))
        recs.append(dict(path=rel, label=lab, format=fmt, w=w, h=h,
                         bytes=os.path.getsize(dst)))
    return recs


# --------------------------------------------------------------------- broken cases
def png_chunk(tag, data):
    return struct.pack(">I", len(data)) + tag + data + \
        struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def bomb_png(w, h):
    """Tiny PNG whose IHDR claims w x h 8-bit RGB; IDAT holds only 4 zero rows."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * ((1 + 3 * w) * 4), 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + \
        png_chunk(b"IEND", b"")


def patch_jpeg_sof(data, w, h):
    """Return a copy of a baseline JPEG whose SOF0 header claims w x h."""
    pos = data.find(b"\xff\xc0")
    assert pos > 0, "no SOF0"
    b = bytearray(data)
    b[pos + 5:pos + 9] = struct.pack(">HH", h, w)
    return bytes(b)


def make_broken(out, fm_dir, val_recs, seed):
    bdir = os.path.join(out, "broken")
    img = os.path.join(bdir, "img")
    os.makedirs(img, exist_ok=True)
    rng = np.random.default_rng([seed, 99])
    cases = []

    def case(name, expect, note, list_=None, line=None, path=None):
        cases.append({"case": name, "expect": expect, "list": list_, "line": line,
                      "path": path, "note": note})

    # a few good images (copies of val images) for the lists to surround bad lines
    good = []
    for j, r in enumerate([r for r in val_recs if r["format"] == "jpeg_rgb"][:4]):
        name = f"img/ok_{j}.jpg"
        shutil.copyfile(os.path.join(out, "imagefolder", r["path"]),
                        os.path.join(bdir, name))
        good.append((name, r["label"]))
    ok_png = "img/ok_png.png"
    Image.open(os.path.join(bdir, good[0][0])).save(os.path.join(bdir, ok_png))
    good_bytes = open(os.path.join(bdir, good[0][0]), "rb").read()

    def write_list(name, lines):
        with open(os.path.join(bdir, name), "w", newline="") as f:
            f.write("".join(lines))

    def good_lines(a, b):
        return [f"{p} {l}\n" for p, l in good[a:b]]

    # --- bad files, each referenced on line 2 of its own list (line 1 and 3 are good)
    bad_files = []
    open(os.path.join(bdir, "img/truncated.jpg"), "wb").write(good_bytes[:len(good_bytes) // 2])
    bad_files.append(("truncated_jpeg", "img/truncated.jpg",
                      "first half of a valid baseline JPEG (no EOI); PIL's load() raises "
                      "OSError 'Truncated File Read'; libjpeg only WARNS (premature end "
                      "of data) and pads with gray, so treat that warning as an error"))
    open(os.path.join(bdir, "img/random.jpg"), "wb").write(rng.bytes(4096))
    bad_files.append(("random_bytes_jpg", "img/random.jpg",
                      "4096 random bytes named .jpg (no SOI marker)"))
    open(os.path.join(bdir, "img/empty.png"), "wb").close()
    bad_files.append(("zero_byte_png", "img/empty.png", "0-byte file named .png"))
    open(os.path.join(bdir, "img/bomb.png"), "wb").write(bomb_png(20000, 20000))
    bad_files.append(("bomb_png", "img/bomb.png",
                      "tiny PNG (valid CRCs) whose IHDR says 20000x20000 RGB = 4e8 px "
                      "> PIL's limit 89,478,485 (PIL raises DecompressionBombError at "
                      "2x the limit); must be refused from the header, before allocating"))
    open(os.path.join(bdir, "img/bomb.jpg"), "wb").write(
        patch_jpeg_sof(good_bytes, 20000, 20000))
    bad_files.append(("bomb_jpeg", "img/bomb.jpg",
                      "valid small baseline JPEG with SOF0 patched to 20000x20000"))
    Image.fromarray(np.asarray(Image.open(os.path.join(bdir, good[1][0])).convert("L"))) \
        .save(os.path.join(bdir, "img/image.gif"), format="GIF")
    bad_files.append(("gif_unsupported", "img/image.gif",
                      "a real GIF (unsupported format: ImageFolder's extension list "
                      "has no .gif; PIL itself could decode it)"))
    bad_files.append(("missing_file", "img/does_not_exist.jpg",
                      "listed path that does not exist"))
    for name, path, note in bad_files:
        lst = f"list_{name}.txt"
        write_list(lst, good_lines(0, 1) + [f"{path} {good[1][1]}\n"] + good_lines(2, 3))
        case(name, "error", note, lst, 2, path)

    # --- malformed list lines (line 2; lines 1 and 3 good)
    p2 = good[1][0]
    bad_lines = [
        ("one_token", f"{p2}\n", "a single token (no label)"),
        ("three_tokens", f"{p2} 1 2\n", "three tokens (paths cannot contain spaces)"),
        ("non_integer_label", f"{p2} abc\n", "label 'abc'"),
        ("float_label", f"{p2} 1.5\n", "label '1.5'"),
        ("negative_label", f"{p2} -1\n", "label -1"),
        ("label_out_of_range", f"{p2} 99\n",
         "label 99 with a 10-class model (parses; must fail when checked against "
         "the model's class count)"),
    ]
    for name, line, note in bad_lines:
        lst = f"list_{name}.txt"
        write_list(lst, good_lines(0, 1) + [line] + good_lines(2, 3))
        case(name, "error", note, lst, 2, p2)

    # --- empty lists
    write_list("list_empty.txt", [])
    case("empty_list", "error", "0-byte list file: no samples", "list_empty.txt", None, None)
    write_list("list_blank_only.txt", ["\n", "   \n", "\n"])
    case("blank_only_list", "error",
         "only blank lines -> no samples after skipping blanks", "list_blank_only.txt",
         None, None)

    # --- lists that must parse fine
    write_list("list_blank_lines_ok.txt",
               ["\n"] + good_lines(0, 2) + ["\n", "  \t \n"] + good_lines(2, 4) + ["\n"])
    case("blank_lines_ok", "ok",
         "blank / whitespace-only lines (1, 4, 5, 8) are skipped: 4 samples",
         "list_blank_lines_ok.txt", None, None)
    write_list("list_whitespace_ok.txt",
               [f"{good[0][0]}\t{good[0][1]}\n", f"  {good[1][0]}   {good[1][1]}  \n",
                f"{good[2][0]} {good[2][1]}\r\n", f"{ok_png} {good[0][1]}"])
    case("whitespace_ok", "ok",
         "tab separator, leading/multiple/trailing spaces, CRLF line, no final "
         "newline, a PNG: 4 samples", "list_whitespace_ok.txt", None, None)

    # --- ImageFolder trees
    ifd = os.path.join(bdir, "imagefolder_empty_class")
    for k in ("0_a", "1_b", "2_c"):
        os.makedirs(os.path.join(ifd, k), exist_ok=True)
    for k in ("0_a", "2_c"):
        for j in range(2):
            shutil.copyfile(os.path.join(bdir, good[j][0]), os.path.join(ifd, k, f"{j}.jpg"))
    open(os.path.join(ifd, "1_b", "notes.txt"), "w").write("not an image\n")
    case("imagefolder_empty_class", "error",
         "class folder 1_b has no image (only notes.txt); torchvision 0.14 raises "
         "FileNotFoundError 'Found no valid file for the classes 1_b'",
         None, None, "imagefolder_empty_class/1_b")
    ifd = os.path.join(bdir, "imagefolder_all_empty")
    for k in ("0_a", "1_b"):
        os.makedirs(os.path.join(ifd, k), exist_ok=True)
    case("imagefolder_all_empty", "error", "two class folders, no files at all",
         None, None, "imagefolder_all_empty")
    os.makedirs(os.path.join(bdir, "imagefolder_no_classes"), exist_ok=True)
    shutil.copyfile(os.path.join(bdir, good[0][0]),
                    os.path.join(bdir, "imagefolder_no_classes", "loose.jpg"))
    case("imagefolder_no_classes", "error",
         "root holds a loose image and no class sub-folders (torchvision: "
         "'Couldn't find any class folder')", None, None, "imagefolder_no_classes")
    ifd = os.path.join(bdir, "imagefolder_mixed_ok")
    for k in ("0_a", "1_b"):
        os.makedirs(os.path.join(ifd, k), exist_ok=True)
    shutil.copyfile(os.path.join(bdir, good[0][0]), os.path.join(ifd, "0_a", "x.JPG"))
    shutil.copyfile(os.path.join(bdir, good[1][0]), os.path.join(ifd, "0_a", "y.jpeg"))
    shutil.copyfile(os.path.join(bdir, ok_png), os.path.join(ifd, "1_b", "z.png"))
    open(os.path.join(ifd, "1_b", "readme.txt"), "w").write("ignored\n")
    open(os.path.join(ifd, "1_b", ".hidden"), "w").write("ignored\n")
    case("imagefolder_mixed_ok", "ok",
         "upper-case .JPG and .jpeg accepted (torchvision lower-cases extensions); "
         "readme.txt and .hidden ignored: 3 samples, classes [0_a, 1_b]",
         None, None, "imagefolder_mixed_ok")

    # --- corrupt gzip IDX
    src = os.path.join(fm_dir, "t10k-images-idx3-ubyte.gz")
    data = bytearray(open(src, "rb").read())
    data[-8] ^= 0xFF  # first byte of the little-endian CRC32 in the gzip trailer
    open(os.path.join(bdir, "bad-crc-images-idx3-ubyte.gz"), "wb").write(data)
    shutil.copyfile(os.path.join(fm_dir, "t10k-labels-idx1-ubyte.gz"),
                    os.path.join(bdir, "bad-crc-labels-idx1-ubyte.gz"))
    case("gzip_bad_crc", "error",
         "t10k images .gz with the first byte of the gzip trailer CRC32 flipped "
         "(all data decompresses; only the CRC check fails); labels file is intact",
         None, None, "bad-crc-images-idx3-ubyte.gz")
    good_gz = open(src, "rb").read()
    open(os.path.join(bdir, "truncated-images-idx3-ubyte.gz"), "wb").write(
        good_gz[:len(good_gz) // 2])
    shutil.copyfile(os.path.join(fm_dir, "t10k-labels-idx1-ubyte.gz"),
                    os.path.join(bdir, "truncated-labels-idx1-ubyte.gz"))
    case("gzip_truncated", "error",
         "first half of the t10k images .gz (member cut mid-stream, no trailer); "
         "labels file is intact", None, None, "truncated-images-idx3-ubyte.gz")

    with open(os.path.join(bdir, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)
    with open(os.path.join(bdir, "README.txt"), "w") as f:
        f.write("Error-path inputs written by tests/data/make_image_sets.py.\n"
                "Paths are relative to this directory; list lines are 1-based.\n"
                "Every list_<case>.txt has good samples on lines 1 and 3 and the\n"
                "bad entry on line 2 unless stated otherwise.  Conventions chosen:\n"
                "blank / whitespace-only lines are skipped; '#' is NOT a comment;\n"
                "separators are any whitespace; CRLF is accepted; a list with no\n"
                "samples is an error.  expect=ok cases must load.\n"
                "cases.json holds the same table as "
                "{case, expect, list, line, path, note}.\n\n")
        for c in cases:
            where = f"{c['list']} line {c['line']}" if c["line"] else (c["list"] or "")
            f.write(f"{c['case']:<26} expect={c['expect']:<5} {where}"
                    f"{'  ' if where else ''}path={c['path']}\n    {c['note']}\n")
    return cases


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--train", type=int, default=2000)
    ap.add_argument("--eval", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-png16", action="store_true",
                    help="write png_rgb instead of 16-bit gray PNGs")
    ap.add_argument("--fmnist", default=FMNIST_DIR)
    a = ap.parse_args()
    t0 = time.time()
    out = a.out_dir
    if os.path.exists(out) and os.listdir(out):
        for sub in ("imagefolder", "act", "broken"):
            shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
    os.makedirs(out, exist_ok=True)

    tr_x = read_idx_gz(os.path.join(a.fmnist, "train-images-idx3-ubyte.gz"))
    tr_y = read_idx_gz(os.path.join(a.fmnist, "train-labels-idx1-ubyte.gz"))
    te_x = read_idx_gz(os.path.join(a.fmnist, "t10k-images-idx3-ubyte.gz"))
    te_y = read_idx_gz(os.path.join(a.fmnist, "t10k-labels-idx1-ubyte.gz"))
    if a.train > len(tr_y) or a.eval > len(te_y):
        sys.exit(f"at most {len(tr_y)} train / {len(te_y)} eval images")
    rng = np.random.default_rng(a.seed)
    tr_idx = np.sort(rng.permutation(len(tr_y))[:a.train])
    te_idx = np.sort(rng.permutation(len(te_y))[:a.eval])

    fmts = [(n, w) for n, w in FORMATS]
    if a.no_png16:
        fmts = [(n, w + (0.03 if n == "png_rgb" else 0)) for n, w in fmts
                if n != "png_gray16"]
    names = [n for n, _ in fmts]
    p = np.array([w for _, w in fmts])
    p = p / p.sum()

    recs = {}
    recs["train"] = make_split(out, "train", tr_x[tr_idx], tr_y[tr_idx], a.seed, 0, names, p)
    recs["val"] = make_split(out, "val", te_x[te_idx], te_y[te_idx], a.seed, 1, names, p)
    for r, src in zip(recs["train"], tr_idx):
        r["src_index"] = int(src)
    for r, src in zip(recs["val"], te_idx):
        r["src_index"] = int(src)

    order = np.random.default_rng([a.seed, 7]).permutation(len(recs["train"]))
    with open(os.path.join(out, "act", "train_list.txt"), "w") as f:
        for i in order:
            f.write(f"{recs['train'][i]['path']} {recs['train'][i]['label']}\n")
    with open(os.path.join(out, "act", "val_list.txt"), "w") as f:
        for r in recs["val"]:
            f.write(f"{r['path']} {r['label']}\n")

    import h5py
    x = te_x[te_idx][:, None, :, :].copy()
    y = te_y[te_idx].astype(np.int64)
    for name, arr in (("fmnist_eval_u8.h5", x),
                      ("fmnist_eval_f32.h5", x.astype(np.float32) / np.float32(255))):
        with h5py.File(os.path.join(out, name), "w") as h:
            h.create_dataset("x", data=arr)
            h.create_dataset("y", data=y)
            h.attrs["source"] = "fashion-mnist t10k, rows in act/val_list.txt order"
            h.attrs["t10k_index"] = te_idx.astype(np.int64)

    cases = make_broken(out, a.fmnist, recs["val"], a.seed)

    def count(rs, key):
        c = {}
        for r in rs:
            c[r[key]] = c.get(r[key], 0) + 1
        return dict(sorted(c.items()))
    manifest = {
        "seed": a.seed,
        "classes": CLASS_NAMES,
        "num_classes": len(CLASS_NAMES),
        "act_data_dir": "act",
        "act_lists": {"train": "act/train_list.txt", "val": "act/val_list.txt"},
        "imagefolder": {"train": "imagefolder/train", "val": "imagefolder/val"},
        "act_files_are": "hard links to imagefolder files (same relative path)",
        "h5": {"u8": "fmnist_eval_u8.h5", "f32": "fmnist_eval_f32.h5",
               "order": "act/val_list.txt"},
        "counts": {s: {"total": len(rs), "per_format": count(rs, "format"),
                       "per_class": {CLASS_NAMES[k]: v
                                     for k, v in count(rs, "label").items()},
                       "bytes": int(sum(r["bytes"] for r in rs))}
                   for s, rs in recs.items()},
        "broken_cases": len(cases),
        "png16_note": "PIL opens 16-bit gray PNG as mode I; convert('RGB') clamps "
                      "values > 255 to 255 (no >>8 scaling)",
        "files": recs,
    }
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    print(json.dumps({"out": out, "train": len(recs["train"]), "val": len(recs["val"]),
                      "broken_cases": len(cases), "seconds": round(time.time() - t0, 2)}))


if __name__ == "__main__":
    main()
