#!/usr/bin/python3
"""`slimtrain inspect --json` lists torchvision models correctly.

usage: inspect_torchvision.py SLIMTRAIN EXPORT_DIR [MODEL ...]

EXPORT_DIR holds torchvision_parity.py's exports (written here if missing).
For each model the truth comes from PyTorch's module tree and from Python's
onnx package (shape inference, node list), independently of slimtrain:
  - inputs/outputs with the dynamic batch axis and the [1, 1000] output;
  - every tensor the ONNX graph computes, with its producing op type and the
    shape onnx.shape_inference gives at batch 1;
  - parameter count = PyTorch's parameters, less the batch-norm parameters
    torch.onnx.export folds into the convolution before them;
  - quantized ops: one per nn.Conv2d / nn.Linear, depthwise exactly where
    groups == in_channels > 1, each with its ONNX weight initializer;
  - prunable parameters (all >= 2-D weights; conv1x1_only: 4-D 1x1 kernels);
  - default distillation nodes by act-reference §5.2's rule.
Exits 1 listing every mismatch.
"""
import json
import os
import subprocess
import sys

try:
    import onnx
    import onnx.shape_inference
    import torch
    import torchvision
except ImportError as e:  # ctest counts exit code 77 as a skip
    print(f"SKIP: /usr/bin/python3 lacks {e.name} (Debian python3-torch, "
          "python3-torchvision, python3-onnx)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torchvision_parity  # noqa: E402

WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "BatchNormalization", "LayerNormalization",
            "InstanceNormalization"}


def torch_truth(name):
    model = getattr(torchvision.models, name)(weights=None)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "bn_channels": sum(m.num_features for m in bns),
        "convs": len(convs),
        "depthwise": sum(1 for m in convs if m.groups > 1 and m.groups == m.in_channels),
        "linears": sum(1 for m in model.modules() if isinstance(m, torch.nn.Linear)),
    }


def onnx_shapes(model):
    """Shapes of every value at batch 1, by onnx's own shape inference."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    for v in list(m.graph.input) + list(m.graph.output):
        d = v.type.tensor_type.shape.dim[0]
        d.ClearField("dim_param")
        d.dim_value = 1
    m = onnx.shape_inference.infer_shapes(m, strict_mode=True)
    out = {}
    for v in list(m.graph.value_info) + list(m.graph.output) + list(m.graph.input):
        dims = v.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            out[v.name] = [d.dim_value for d in dims]
    return out


def distill_truth(graph, inits):
    """act-reference §5.2 find_final_nodes over ONNX nodes."""
    consumers = {}
    for n in graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)

    def weighted(n):
        if n.op_type in WEIGHTED:
            return True
        return n.op_type == "MatMul" and any(i in inits for i in n.input)

    out = []
    for n in graph.node:
        if not weighted(n):
            continue
        t, follow = n.output[0], False
        while t in consumers:
            nxt = consumers[t][0]
            if weighted(nxt):
                follow = True
                break
            t = nxt.output[0]
        if follow:
            continue
        first = consumers.get(n.output[0], [None])[0]
        if first is not None and first.op_type == "Add" and any(i in inits for i in first.input):
            out.append(first.output[0])
        else:
            out.append(n.output[0])
    return out


def check(binary, export_dir, name):
    errors = []
    path = os.path.join(export_dir, name, "model.onnx")
    got = json.loads(subprocess.run([binary, "inspect", path, "--json"], check=True,
                                    capture_output=True, text=True).stdout)
    model = onnx.load(path)
    g = model.graph
    inits = {i.name: list(i.dims) for i in g.initializer}
    # torch.onnx.export shares equal initializers through Identity nodes;
    # slimtrain folds each such Identity into a parameter of its own.
    folded = set()
    for n in g.node:
        if n.op_type == "Identity" and n.input[0] in inits:
            inits[n.output[0]] = inits[n.input[0]]
            folded.add(n.output[0])
    shapes = onnx_shapes(model)
    truth = torch_truth(name)

    def expect(what, a, b):
        if a != b:
            errors.append(f"{name}: {what}: slimtrain {a!r}, expected {b!r}")

    expect("inputs", got["inputs"], [{"name": "input", "shape": [-1, 3, 224, 224]}])
    expect("outputs", got["outputs"], [{"name": "output", "shape": [1, 1000]}])
    # Distillation proposals: one tensor per spatial resolution of the backbone
    # (stem 112 ... 7 at 224x224), then the default nodes and the logits
    # (marked when used by default).
    props = got["proposed_distill_nodes"]
    sizes = [tuple(p["shape"][2:]) for p in props if p["shape"] and len(p["shape"]) == 4]
    if len(set(sizes)) < 4:
        errors.append(f"{name}: proposals should cover >= 4 resolutions, got {sizes}")
    expect("last proposal", props[-1]["name"], "output")
    if not any(p["default"] for p in props):
        errors.append(f"{name}: no proposal is marked as a default node")
    if "shape_inference_error" in got:
        errors.append(f"{name}: shape inference failed: {got['shape_inference_error']}")

    # Tensors: every float value ONNX computes (not the integer shape arithmetic
    # that slimtrain folds into constants on import).
    listed = {t["name"]: t for t in got["tensors"]}
    checked = 0
    for n in g.node:
        if n.output[0] in folded or (n.op_type in ("Constant", "Shape", "Gather", "Unsqueeze",
                                                   "Squeeze", "Concat") and n.output[0] not in listed):
            continue
        for o in n.output:
            t = listed.get(o)
            if t is None:
                errors.append(f"{name}: tensor '{o}' ({n.op_type}) not listed")
                continue
            expect(f"op of '{o}'", t["op"], n.op_type)
            if o in shapes:
                expect(f"shape of '{o}'", t["shape"], shapes[o])
            checked += 1

    # Parameters: conv/gemm weights and biases; batch norm folded by the export.
    bn_nodes = sum(1 for n in g.node if n.op_type == "BatchNormalization")
    want_params = truth["params"] - (0 if bn_nodes else truth["bn_channels"])
    expect("parameter_count", got["parameter_count"], want_params)
    trainable = sorted(p["name"] for p in got["parameters"] if p["kind"] == "trainable")
    weight_inputs = sorted({i for n in g.node if n.op_type in ("Conv", "Gemm")
                            for i in n.input[1:] if i in inits})
    expect("trainable parameters", trainable, weight_inputs)

    # Quantized ops.
    kinds = {}
    for q in got["quantized_ops"]:
        kinds[q["kind"]] = kinds.get(q["kind"], 0) + 1
    expect("conv2d ops", kinds.get("conv2d", 0), truth["convs"] - truth["depthwise"])
    expect("depthwise_conv2d ops", kinds.get("depthwise_conv2d", 0), truth["depthwise"])
    expect("mul (Gemm) ops", kinds.get("mul", 0), truth["linears"])
    node_weight = {n.name: n.input[1] for n in g.node if n.op_type in ("Conv", "Gemm")}
    expect("quantized nodes and weights",
           sorted((q["node"], q["weight"]) for q in got["quantized_ops"]),
           sorted(node_weight.items()))

    # Pruning candidates.
    expect("prunable_params", got["prunable_params"],
           sorted(w for w in weight_inputs if len(inits[w]) >= 2))
    expect("prunable_params_conv1x1_only", got["prunable_params_conv1x1_only"],
           sorted(w for w in weight_inputs if len(inits[w]) == 4 and inits[w][2:] == [1, 1]))

    expect("default_distill_nodes", got["default_distill_nodes"], distill_truth(g, inits))
    print(f"{name}: {checked} tensors, {len(trainable)} parameter tensors "
          f"({got['parameter_count']} values), {len(got['quantized_ops'])} quantized ops "
          f"{kinds}, {len(got['prunable_params'])} prunable "
          f"({len(got['prunable_params_conv1x1_only'])} 1x1), distill "
          f"{got['default_distill_nodes']}: {'ok' if not errors else 'MISMATCH'}", flush=True)
    return errors


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    binary, export_dir = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or torchvision_parity.MODELS
    torchvision_parity.export_all(export_dir, names)
    errors = []
    for name in names:
        errors += check(binary, export_dir, name)
    for e in errors:
        print("MISMATCH", e)
    print(f"{len(names)} models, {len(errors)} mismatches")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
