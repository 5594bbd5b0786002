#!/usr/bin/python3
"""Parity of slim_image_tool with PIL 9.4 / torchvision 0.14.

Generates JPEGs with PIL (baseline, progressive, 4:4:4, grayscale, CMYK,
qualities 75-95, 40x40 .. 640x480, odd sizes) and PNGs with a small writer
below (every color type and bit depth, palette + tRNS, Adam7 interlace; PIL
cannot write most of these), then checks:
  decode: identical to Image.open(f).convert('RGB');
  eval:   ACT (imagenet_reader resize_short + crop_image) and torchvision
          (Resize + CenterCrop) references, each interpolation, without DCT
          scaling: >= 99.9 % of values within 2/255 (reports share and max);
          with DCT scaling: reported, loosely bounded;
  train:  shape, determinism per seed, seeds differ.
Usage: image_parity_test.py PATH/TO/slim_image_tool. Exit 77: PIL missing.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import warnings
import zlib

try:
    import numpy as np
    from PIL import Image
except ImportError as e:  # ctest SKIP_RETURN_CODE 77
    print(f"SKIPPED: PIL/numpy not available ({e})")
    sys.exit(77)
try:
    import torchvision.transforms as T
    from torchvision.transforms import InterpolationMode
except ImportError:
    T = None

warnings.simplefilter("ignore")  # PIL: "Palette images with Transparency ..."
TOOL = sys.argv[1]
S, R = 224, 256
INTERPS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR,
           "bicubic": Image.BICUBIC, "lanczos": Image.LANCZOS}


def png_bytes(samples, ct, depth, plte=None, trns=None, interlace=False):
    """A PNG of samples (H, W, C) ints; filter 0 on every row."""
    h, w = samples.shape[:2]

    def rows(sub):
        out = b""
        for row in sub:
            flat = row.reshape(-1).astype(np.int64)
            if depth == 16:
                data = flat.astype(">u2").tobytes()
            elif depth == 8:
                data = flat.astype(np.uint8).tobytes()
            else:
                bits = "".join(format(int(v), f"0{depth}b") for v in flat)
                bits += "0" * (-len(bits) % 8)
                data = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))
            out += b"\0" + data
        return out

    if interlace:
        raw = b""
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            sub = samples[y0::dy, x0::dx]
            if sub.size:
                raw += rows(sub)
    else:
        raw = rows(samples)

    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    out = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ct, 0, 0,
                                                             int(interlace)))
    if plte is not None:
        out += chunk(b"PLTE", bytes(np.asarray(plte, np.uint8).reshape(-1)))
    if trns is not None:
        out += chunk(b"tRNS", trns)
    return out + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def natural(w, h, seed):
    """A photo-like RGB image: gradients, edges and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([128 + 100 * np.sin(x / (7 + seed) + y / 23),
                    128 + 90 * np.cos(y / (5 + seed % 3) - x / 31),
                    (x * 3 + y * 2) % 256], -1)
    img[(x // 16 + y // 16) % 2 == 0] *= 0.6
    img += rng.normal(0, 12, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def make_images(d):
    imgs = []  # (label, path)

    def add(label, name, data=None, pil=None, **kw):
        p = os.path.join(d, name)
        if pil is not None:
            pil.save(p, **kw)
        else:
            open(p, "wb").write(data)
        imgs.append((label, p))

    for i, (w, h, q) in enumerate([(40, 40, 75), (500, 375, 90), (640, 480, 95), (257, 301, 85),
                                   (333, 247, 80), (1031, 769, 90), (97, 513, 92)]):
        add("jpeg-baseline", f"b{i}.jpg", pil=Image.fromarray(natural(w, h, i)), quality=q)
    add("jpeg-444", "s444.jpg", pil=Image.fromarray(natural(300, 200, 7)), quality=90, subsampling=0)
    add("jpeg-progressive", "p0.jpg", pil=Image.fromarray(natural(480, 360, 8)), quality=85,
        progressive=True)
    add("jpeg-progressive", "p1.jpg", pil=Image.fromarray(natural(123, 457, 9)), quality=95,
        progressive=True)
    add("jpeg-gray", "g0.jpg", pil=Image.fromarray(natural(320, 240, 10)).convert("L"), quality=90)
    add("jpeg-gray", "g2.jpg", pil=Image.fromarray(natural(1100, 900, 16)).convert("L"), quality=90)
    add("jpeg-progressive", "p2.jpg", pil=Image.fromarray(natural(1200, 800, 17)), quality=90,
        progressive=True)
    add("jpeg-gray", "g1.jpg", pil=Image.fromarray(natural(55, 77, 11)).convert("L"), quality=75)
    add("jpeg-cmyk", "c0.jpg", pil=Image.fromarray(natural(300, 260, 12)).convert("CMYK"),
        quality=90)
    add("jpeg-cmyk", "c1.jpg", pil=Image.fromarray(natural(61, 45, 13)).convert("CMYK"), quality=80)

    rng = np.random.default_rng(1)
    base = natural(67, 53, 14).astype(np.int64)
    gray = base[..., :1]
    for il in (False, True):
        tag = "-interlaced" if il else ""
        for depth in (1, 2, 4, 8, 16):
            g = gray * ((1 << depth) - 1) // 255
            if depth == 16:
                g = gray * 257 // rng.integers(1, 300)  # many values above 255
            add(f"png-gray{depth}{tag}", f"g{depth}{tag}.png", png_bytes(g, 0, depth, interlace=il))
        for depth in (8, 16):
            m = (1 << depth) - 1
            rgb = base * m // 255
            alpha = rng.integers(0, m + 1, base.shape[:2] + (1,))
            add(f"png-rgb{depth}{tag}", f"rgb{depth}{tag}.png", png_bytes(rgb, 2, depth, interlace=il))
            add(f"png-rgba{depth}{tag}", f"rgba{depth}{tag}.png",
                png_bytes(np.concatenate([rgb, alpha], -1), 6, depth, interlace=il))
            add(f"png-graya{depth}{tag}", f"ga{depth}{tag}.png",
                png_bytes(np.concatenate([rgb[..., :1], alpha], -1), 4, depth, interlace=il))
        for depth in (1, 2, 4, 8):
            n = 1 << depth
            plte = rng.integers(0, 256, (n, 3))
            idx = rng.integers(0, n, base.shape[:2] + (1,))
            trns = bytes(rng.integers(0, 256, n // 2 + 1).astype(np.uint8))
            add(f"png-palette{depth}{tag}", f"p{depth}{tag}.png",
                png_bytes(idx, 3, depth, plte=plte, trns=trns, interlace=il))
    add("png-rgb8", "big.png", png_bytes(natural(410, 300, 15).astype(np.int64), 2, 8))
    return imgs


def tool(*args):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def tool_transform(path, out, kind, interp, extra):
    tool("transform", "--kind", kind, "--interp", interp, "--img-size", str(S),
         "--resize-size", str(R), *extra, path, out)
    return np.fromfile(out, np.uint8).reshape(3, S, S).transpose(1, 2, 0)


def ref_eval(path, kind, interp):
    img = Image.open(path).convert("RGB")
    if kind == "act":  # imagenet_reader.resize_short + crop_image(center=True)
        percent = float(R) / min(img.size)
        w, h = int(round(img.size[0] * percent)), int(round(img.size[1] * percent))
        img = img.resize((w, h), INTERPS[interp])
        x, y = (w - S) // 2, (h - S) // 2
        img = img.crop((x, y, x + S, y + S))
    else:
        mode = InterpolationMode(interp)
        img = T.CenterCrop(S)(T.Resize(R, interpolation=mode)(img))
    return np.asarray(img)


def main():
    stats = {}  # (check, label) -> [n, within2, maxdiff, n_images]
    failures = []

    def record(check, label, a, b, need):
        diff = np.abs(a.astype(np.int32) - b.astype(np.int32))
        family = label.replace("-interlaced", "")  # rows of the table
        family = family.rstrip("0123456789") if family.startswith("png") else family
        s = stats.setdefault((check.rsplit("-", 1)[0] if check != "decode" else check, family),
                             [0, 0, 0, 0, 0, 0])
        s[4] += int((diff == 0).sum())
        s[5] += int(diff.sum())
        s[0] += diff.size
        s[1] += int((diff <= 2).sum())
        s[2] = max(s[2], int(diff.max()))
        s[3] += 1
        share = (diff <= 2).mean()
        if need is not None and share < need:
            failures.append(f"{check} {label}: {share:.5f} within 2/255 (max {diff.max()})")

    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.raw")
        images = make_images(d)
        for label, path in images:
            info = json.loads(tool("decode", path, out))
            mine = np.fromfile(out, np.uint8).reshape(info["height"], info["width"], 3)
            ref = np.asarray(Image.open(path).convert("RGB"))
            if mine.shape != ref.shape or not np.array_equal(mine, ref):
                failures.append(f"decode {label} {os.path.basename(path)}: differs from PIL")
            record("decode", label, mine, ref if mine.shape == ref.shape else mine, None)
            kinds = ["act"] + (["torchvision"] if T is not None else [])
            for kind in kinds:
                for interp in INTERPS:
                    ref = ref_eval(path, kind, interp)
                    got = tool_transform(path, out, kind, interp, ["--eval", "--no-dct"])
                    record(f"eval-{kind}-{interp}", label, got, ref, 0.999)
                    if min(mine.shape[:2]) >= 2 * R and interp in ("lanczos", "bilinear"):
                        got = tool_transform(path, out, kind, interp, ["--eval"])  # 1/2 scale
                        record(f"eval-dct-{kind}-{interp}", label, got, ref, 0.5)
            if min(mine.shape[:2]) >= 2 * S:  # training crops can be DCT-scaled
                for seed in range(12):
                    for kind, interp in (("act", "lanczos"), ("torchvision", "bilinear")):
                        args = ["--seed", str(seed)]
                        got = tool_transform(path, out, kind, interp, args)
                        exact = tool_transform(path, out, kind, interp, args + ["--no-dct"])
                        record(f"train-dct-vs-nodct-{interp}", label, got, exact, None)
        for label, path in images[:4] + images[-3:]:
            a = tool_transform(path, out, "act", "lanczos", ["--seed", "5"])
            b = tool_transform(path, out, "act", "lanczos", ["--seed", "5"])
            c = tool_transform(path, out, "torchvision", "bilinear", ["--seed", "6"])
            e = tool_transform(path, out, "torchvision", "bilinear", ["--seed", "7"])
            if not np.array_equal(a, b) or np.array_equal(c, e) or a.shape != (S, S, 3):
                failures.append(f"train {label}: not deterministic per seed / seeds agree")

    print("all interpolations, bit depths and interlacing of a format pooled per row;")
    print("'imgs' counts image x interpolation runs")
    print(f"{'check':24s} {'format':18s} {'imgs':>4s} {'exact':>9s} {'within 2/255':>12s} {'max':>4s} {'mean':>6s}")
    for (check, label), (n, ok, mx, k, ex, tot) in sorted(stats.items()):
        print(f"{check:24s} {label:18s} {k:4d} {100.0 * ex / n:8.4f}% {100.0 * ok / n:11.4f}% "
              f"{mx:4d} {tot / n:6.3f}")
    if T is None:
        print("note: torchvision not importable; torchvision references skipped")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
