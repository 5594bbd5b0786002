#!/usr/bin/python3
"""Writes damaged ONNX and Paddle models (and what each must produce) for
damaged_models.py. Every case starts from a real model: a 28x28 CNN written
here with onnx.helper, the repository's own fuzz corpus, and (when present)
the third-party fixtures of ../shared/fixtures. Damage: truncation at many
offsets, corrupted field tags (flipped wire-type bits), wrong or huge dims,
bad kernel_shape / group / strides, huge Reshape / Expand, missing
initializers, no outputs, cycles, duplicate producers, unsupported ops and
opsets, and Paddle programs and parameter files cut or altered.

Usage: make_damaged_models.py SOURCE_DIR OUT_DIR
Writes OUT_DIR/cases.json: [{name, file, format, offset (or null), commands}].
"""
import copy
import gzip
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SRC, OUT = sys.argv[1], sys.argv[2]
FIXTURES = os.path.join(SRC, "..", "shared", "fixtures")
FMNIST = "/usr/share/datasets/fashion-mnist"
cases = []


# --- wire format ------------------------------------------------------------
def varint(b, p):
    v = shift = 0
    while True:
        c = b[p]
        p += 1
        v |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return v, p


def fields(b, start=0, end=None):
    """(tag offset, field number, wire type, body start, body end) of each
    field of the message in b[start:end]."""
    end = len(b) if end is None else end
    p, out = start, []
    while p < end:
        at = p
        tag, p = varint(b, p)
        wire = tag & 7
        if wire == 0:
            _, p = varint(b, p)
            out.append((at, tag >> 3, wire, p, p))
        elif wire in (1, 5):
            p += 8 if wire == 1 else 4
            out.append((at, tag >> 3, wire, p, p))
        elif wire == 2:
            n, q = varint(b, p)
            out.append((at, tag >> 3, wire, q, q + n))
            p = q + n
        else:
            raise ValueError("unexpected wire type")
    return out


def truncation_offset(b, cut):
    """Where slimtrain must report a cut at `cut`: the tag of the top-level
    field that spans it (its length or value runs past the end)."""
    for at, _, _, _, end in fields(b):
        if at < cut < max(end, at + 1):
            return at
    return None


# --- case writers -----------------------------------------------------------
def add(name, data, fmt="onnx", offset=None, commands=None, ext=".onnx"):
    path = os.path.join(OUT, name + ext)
    with open(path, "wb") as f:
        f.write(data)
    cases.append({"name": name, "file": path, "format": fmt, "offset": offset,
                  "commands": commands or (["inspect", "infer", "compress"] if fmt == "onnx"
                                           else ["inspect", "compress"])})


def add_model(name, m, **kw):
    add(name, m.SerializeToString(), **kw)


def fmnist_cnn():
    """Conv 1->4 3x3 -> Relu -> MaxPool 2 -> Reshape -> Gemm 784->10."""
    rng = np.random.default_rng(23)
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (4, 1, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(4, np.float32), "b"),
        numpy_helper.from_array(np.array([-1, 4 * 14 * 14], np.int64), "shape"),
        numpy_helper.from_array(rng.normal(0, 0.05, (10, 4 * 14 * 14)).astype(np.float32), "fc"),
        numpy_helper.from_array(np.zeros(10, np.float32), "fcb"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("MaxPool", ["r"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Reshape", ["p", "shape"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"], name="fc", transB=1),
    ]
    g = helper.make_graph(nodes, "fmnist_cnn",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 28, 28])],
                          [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
                          inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="adv")


def node(m, name):
    return next(n for n in m.graph.node if n.name == name)


def attr(n, name, value):
    for a in list(n.attribute):
        if a.name == name:
            n.attribute.remove(a)
    n.attribute.append(helper.make_attribute(name, value))


def init(m, name):
    return next(t for t in m.graph.initializer if t.name == name)


def semantic_cases(base):
    """Models that parse but are wrong; each a copy of `base` with one edit."""
    def case(name, edit):
        m = copy.deepcopy(base)
        edit(m)
        add_model("cnn_" + name, m)

    case("kernel_shape_5x5", lambda m: attr(node(m, "conv"), "kernel_shape", [5, 5]))
    case("kernel_shape_3d", lambda m: attr(node(m, "conv"), "kernel_shape", [3, 3, 3]))
    case("kernel_shape_zero", lambda m: attr(node(m, "conv"), "kernel_shape", [0, 0]))
    case("group_3", lambda m: attr(node(m, "conv"), "group", 3))
    case("group_zero", lambda m: attr(node(m, "conv"), "group", 0))
    case("group_negative", lambda m: attr(node(m, "conv"), "group", -4))
    case("strides_zero", lambda m: attr(node(m, "conv"), "strides", [0, 0]))
    case("dilations_zero", lambda m: attr(node(m, "conv"), "dilations", [0, 0]))
    case("pads_huge", lambda m: attr(node(m, "conv"), "pads", [1 << 40] * 4))
    case("pads_negative", lambda m: attr(node(m, "conv"), "pads", [-30, -30, -30, -30]))
    case("pool_kernel_zero", lambda m: attr(node(m, "pool"), "kernel_shape", [0, 0]))
    case("pool_kernel_huge", lambda m: attr(node(m, "pool"), "kernel_shape", [1 << 30, 1 << 30]))
    case("kernel_shape_float", lambda m: attr(node(m, "conv"), "kernel_shape", [3.0, 3.0]))

    def reshape_to(dims):
        def edit(m):
            t = init(m, "shape")
            t.CopyFrom(numpy_helper.from_array(np.array(dims, np.int64), "shape"))
        return edit

    case("reshape_huge", reshape_to([1 << 20, 1 << 20, 1 << 20]))
    case("reshape_overflow", reshape_to([1 << 62, 1 << 62]))
    case("reshape_two_minus_one", reshape_to([-1, -1]))
    case("reshape_mismatch", reshape_to([-1, 777]))

    def expand_huge(m):
        m.graph.initializer.append(numpy_helper.from_array(
            np.array([1 << 16, 1 << 16, 4, 28, 28], np.int64), "big"))
        n = node(m, "relu")
        n.input[0] = "e"
        m.graph.node.insert(0, helper.make_node("Expand", ["c", "big"], ["e"], name="expand"))
    case("expand_huge", expand_huge)

    def wrong_dims(m):
        t = init(m, "w")
        t.dims[0] = 5  # 5x1x3x3 declared, 4x1x3x3 of data
    case("initializer_wrong_dims", wrong_dims)

    def negative_dims(m):
        init(m, "w").dims[1] = -1
    case("initializer_negative_dims", negative_dims)

    def huge_dims(m):
        t = init(m, "fcb")
        del t.dims[:]
        t.dims.extend([1 << 31, 1 << 31, 1 << 31])
    case("initializer_huge_dims", huge_dims)

    def no_data(m):
        t = init(m, "fc")
        t.raw_data = b""
    case("initializer_no_data", no_data)
    case("initializer_bad_type", lambda m: setattr(init(m, "b"), "data_type", 99))
    case("initializer_undefined_type", lambda m: setattr(init(m, "b"), "data_type", 0))

    def missing_init(m):
        m.graph.initializer.remove(init(m, "w"))
    case("missing_initializer", missing_init)

    def missing_shape(m):
        m.graph.initializer.remove(init(m, "shape"))
    case("missing_reshape_shape", missing_shape)
    case("no_outputs", lambda m: m.graph.ClearField("output"))
    case("no_inputs", lambda m: m.graph.ClearField("input"))
    case("no_nodes", lambda m: m.graph.ClearField("node"))

    def output_unknown(m):
        m.graph.output[0].name = "nowhere"
    case("output_not_produced", output_unknown)

    def cycle(m):
        node(m, "conv").input[0] = "r"  # conv <- relu <- conv
    case("cycle", cycle)

    def self_loop(m):
        n = node(m, "relu")
        n.input[0] = "r"
    case("self_loop", self_loop)

    def duplicate_producer(m):
        node(m, "relu").output[0] = "c"
    case("duplicate_producer", duplicate_producer)
    case("unknown_op", lambda m: setattr(node(m, "relu"), "op_type", "FancyRelu"))
    case("custom_domain", lambda m: setattr(node(m, "relu"), "domain", "com.example"))
    case("no_opset", lambda m: m.ClearField("opset_import"))
    case("opset_99", lambda m: setattr(m.opset_import[0], "version", 99))

    def input_no_shape(m):
        m.graph.input[0].type.tensor_type.ClearField("shape")
    case("input_without_shape", input_no_shape)
    case("input_string_type",
         lambda m: setattr(m.graph.input[0].type.tensor_type, "elem_type", TensorProto.STRING))

    def gemm_mismatch(m):
        t = init(m, "fc")
        t.CopyFrom(numpy_helper.from_array(np.zeros((10, 999), np.float32), "fc"))
    case("gemm_inner_mismatch", gemm_mismatch)

    def conv_too_few_inputs(m):
        del node(m, "conv").input[1:]
    case("conv_missing_weight_input", conv_too_few_inputs)


def flipped_tag_cases(data, prefix):
    """Invalid wire type 7 written into field tags at several depths: the
    reported offset must be exactly the corrupted byte."""
    top = fields(data)
    targets = [top[0][0]]
    graph = next(f for f in top if f[1] == 7)
    targets.append(graph[0])
    gfields = fields(data, graph[3], graph[4])
    nodes = [f for f in gfields if f[1] == 1]
    inits = [f for f in gfields if f[1] == 5]
    targets += [nodes[0][0], nodes[-1][0], inits[-1][0]]
    nf = fields(data, nodes[0][3], nodes[0][4])
    targets += [nf[0][0], nf[-1][0]]
    tf = fields(data, inits[0][3], inits[0][4])
    targets.append(tf[-1][0])
    for i, at in enumerate(targets):
        b = bytearray(data)
        b[at] = (b[at] & 0xF8) | 7  # the wire type of a 1-byte tag
        add(f"{prefix}_bad_tag_{i}", bytes(b), offset=at)


def truncated_cases(data, prefix, fractions):
    for frac in fractions:
        cut = max(1, int(len(data) * frac))
        off = truncation_offset(data, cut)
        if off is None:
            continue  # cut on a field boundary: parses as a shorter model
        add(f"{prefix}_cut_{cut}", data[:cut], offset=off)


def onnx_cases():
    os.makedirs(OUT, exist_ok=True)
    cnn = fmnist_cnn()
    onnx.checker.check_model(cnn)
    data = cnn.SerializeToString()
    add("cnn_intact", data)  # the control: every command succeeds on it
    cases[-1]["expect"] = 0
    truncated_cases(data, "cnn", [0.002, 0.01, 0.03, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.97, 0.999])
    flipped_tag_cases(data, "cnn")
    semantic_cases(cnn)
    add("empty_file", b"")
    add("text_file", b"this is not an ONNX model\n")
    add("zero_bytes_1k", bytes(1024))
    add("length_bomb", b"\x3a\xff\xff\xff\xff\x0f", offset=0)  # graph field claiming 4 GiB
    os.makedirs(os.path.join(OUT, "folder.onnx"), exist_ok=True)
    cases.append({"name": "folder_named_onnx", "file": os.path.join(OUT, "folder.onnx"),
                  "format": "onnx", "offset": None, "commands": ["inspect", "infer", "compress"]})
    tiny = os.path.join(SRC, "tests/fuzz/corpus/onnx/tiny_cnn_opset9.onnx")
    tdata = open(tiny, "rb").read()
    truncated_cases(tdata, "tinycnn", [0.05, 0.3, 0.55, 0.8, 0.95])
    mnist8 = os.path.join(FIXTURES, "onnx/mnist-8/mnist-8.onnx")
    if os.path.exists(mnist8):
        mdata = open(mnist8, "rb").read()
        truncated_cases(mdata, "mnist8", [0.01, 0.2, 0.5, 0.8, 0.99])
        flipped_tag_cases(mdata, "mnist8")
    else:
        print(f"note: {mnist8} absent: its cases are skipped")


def paddle_cases():
    simple = os.path.join(FIXTURES, "paddle/paddlelite_simple_model")
    prog = os.path.join(SRC, "tests/fuzz/corpus/paddle/program_conv_pool")
    pdata = open(prog, "rb").read()[1:]  # the fuzz corpus leads with a selector byte
    for frac in [0.1, 0.3, 0.5, 0.7, 0.9]:
        cut = int(len(pdata) * frac)
        if truncation_offset(pdata, cut) is None:
            continue
        d = os.path.join(OUT, f"paddle_prog_cut_{cut}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "__model__"), "wb") as f:
            f.write(pdata[:cut])
        cases.append({"name": f"paddle_prog_cut_{cut}", "file": os.path.join(d, "__model__"),
                      "format": "paddle", "offset": truncation_offset(pdata, cut),
                      "commands": ["inspect", "compress"]})
    if not os.path.isdir(simple):
        print(f"note: {simple} absent: the Paddle parameter cases are skipped")
        return
    model = open(os.path.join(simple, "model.pdmodel"), "rb").read()
    params = open(os.path.join(simple, "model.pdiparams"), "rb").read()

    def pair(name, m, p, offset=None, need=None):
        d = os.path.join(OUT, name)
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "model.pdmodel"), "wb") as f:
            f.write(m)
        if p is not None:
            with open(os.path.join(d, "model.pdiparams"), "wb") as f:
                f.write(p)
        cases.append({"name": name, "file": os.path.join(d, "model.pdmodel"), "format": "paddle",
                      "offset": offset, "need": need, "commands": ["inspect", "compress"]})

    for frac in [0.05, 0.35, 0.65, 0.95]:
        cut = int(len(model) * frac)
        off = truncation_offset(model, cut)
        if off is not None:
            pair(f"paddle_simple_prog_cut_{cut}", model[:cut], params, offset=off)
    for cut in [3, 20, 100, len(params) // 2, len(params) - 1]:
        pair(f"paddle_params_cut_{cut}", model, params[:cut], need="byte")
    pair("paddle_params_extra_bytes", model, params + b"\0" * 16, need="byte")
    bad_version = bytearray(params)
    bad_version[0] = 7
    pair("paddle_params_bad_version", model, bytes(bad_version), need="version")
    pair("paddle_params_empty", model, b"", need="byte")
    pair("paddle_params_missing", model, None)
    bad_size = bytearray(params)
    bad_size[16:20] = (0x7FFFFFF0).to_bytes(4, "little")  # the first TensorDesc size
    pair("paddle_params_huge_desc", model, bytes(bad_size), need="byte")
    gap = os.path.join(FIXTURES, "paddle/paddle_inference_demo_custom_gap")
    if not os.path.isdir(gap):
        return
    d = os.path.join(OUT, "paddle_custom_op")
    os.makedirs(d, exist_ok=True)
    for f in ("custom_gap.pdmodel", "custom_gap.pdiparams"):
        shutil.copy(os.path.join(gap, f), d)
    cases.append({"name": "paddle_custom_op", "file": os.path.join(d, "custom_gap.pdmodel"),
                  "format": "paddle", "offset": None, "need": "gap",
                  "commands": ["inspect", "compress"]})


def tiny_fmnist():
    """64 training and 32 evaluation images of Fashion-MNIST as IDX files."""
    for part, n, tag in (("train", 64, "tr"), ("t10k", 32, "ev")):
        for kind, head in (("images-idx3-ubyte", 16), ("labels-idx1-ubyte", 8)):
            with gzip.open(f"{FMNIST}/{part}-{kind}.gz", "rb") as f:
                raw = f.read()
            row = 28 * 28 if kind.startswith("images") else 1
            out = bytearray(raw[:head] + raw[head:head + n * row])
            out[4:8] = n.to_bytes(4, "big")
            with gzip.open(os.path.join(OUT, f"{tag}-{kind}.gz"), "wb") as f:
                f.write(bytes(out))


onnx_cases()
paddle_cases()
tiny_fmnist()
for c in cases:
    c.setdefault("expect", 2)
with open(os.path.join(OUT, "cases.json"), "w") as f:
    json.dump(cases, f, indent=1)
print(f"{len(cases)} cases: {sum(c['format'] == 'onnx' for c in cases)} ONNX, "
      f"{sum(c['format'] == 'paddle' for c in cases)} Paddle")
