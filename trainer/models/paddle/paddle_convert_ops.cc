// Paddle -> ONNX-named ops, part 1: conv2d / depthwise_conv2d, batch_norm,
// pool2d and the activations. Paddle paddings are [top, bottom, left, right]
// (or [h, w]); ONNX pads are [top, left, bottom, right]. Paddle's SAME
// padding puts the extra pixel at the end (ONNX SAME_UPPER) and forces
// dilation 1.
#include <cmath>

#include "trainer/core/log.h"
#include "trainer/models/paddle/paddle_convert.h"

namespace slim::models::detail {
namespace {

std::vector<int64_t> onnxPads(const std::vector<int64_t>& p) {
  if (p.size() == 2) return {p[0], p[1], p[0], p[1]};
  if (p.size() == 4) return {p[0], p[2], p[1], p[3]};
  SLIM_THROW(ModelError, "paddings must have 2 or 4 values, got ", p.size());
}

void checkNchw(const OpView& op, const char* attr) {
  std::string f = op.s(attr, "NCHW");
  if (f != "NCHW" && f != "AnyLayout")
    SLIM_THROW(ModelError, attr, " '", f, "' is not supported (NCHW only)");
}

void checkPair(const std::vector<int64_t>& v, const char* name) {
  if (v.size() != 2)
    SLIM_THROW(ModelError, name, " must have 2 values (2-D only), got ", v.size());
}

// Sets auto_pad / pads from Paddle's padding_algorithm + paddings.
void setPadding(const OpView& op, ops::Attrs& a, bool* same) {
  std::string alg = op.s("padding_algorithm", "EXPLICIT");
  if (same) *same = alg == "SAME";
  if (alg == "SAME") {
    a.set("auto_pad", std::string("SAME_UPPER"));
  } else if (alg == "VALID") {
    a.set("auto_pad", std::string("VALID"));
  } else if (alg == "EXPLICIT" || alg.empty()) {
    a.set("pads", onnxPads(op.ints("paddings", {0, 0})));
  } else {
    SLIM_THROW(ModelError, "unknown padding_algorithm '", alg, "'");
  }
}

void convertConv(PaddleConverter& c, const OpView& op) {
  checkNchw(op, "data_format");
  if (op.b("fuse_relu", false) || op.b("fuse_residual_connection", false) ||
      !op.s("fuse_activation", "").empty() || !op.optIn("ResidualData").empty())
    SLIM_THROW(ModelError, "fused activation / residual attributes are not supported");
  std::string x = c.input(op.in("Input")), w = c.input(op.in("Filter"));
  std::string bias = op.optIn("Bias");
  ops::Attrs a;
  auto strides = op.ints("strides", {1, 1}), dil = op.ints("dilations", {1, 1});
  checkPair(strides, "strides");
  checkPair(dil, "dilations");
  bool same = false;
  setPadding(op, a, &same);
  if (same) dil = {1, 1};
  a.set("strides", strides);
  a.set("dilations", dil);
  a.set("group", op.i("groups", 1));
  Shape wd;
  if (c.dims(w, wd)) {
    if (wd.size() != 4) SLIM_THROW(ModelError, "Filter must be 4-D, has dims ", shapeStr(wd));
    if (wd[2] > 0 && wd[3] > 0) a.set("kernel_shape", std::vector<int64_t>{wd[2], wd[3]});
  }
  std::vector<std::string> ins{x, w};
  if (!bias.empty()) ins.push_back(c.input(bias));
  c.node("Conv", ins, {c.output(op.out("Output"))}, a);
}

void convertBatchNorm(PaddleConverter& c, const OpView& op) {
  checkNchw(op, "data_layout");
  std::string x = c.input(op.in("X"));
  std::string scale = c.input(op.in("Scale")), bias = c.input(op.in("Bias"));
  std::string mean = c.input(op.in("Mean")), var = c.input(op.in("Variance"));
  if (op.b("use_global_stats", false))
    log::warn("Paddle batch_norm op #", op.index(), " has use_global_stats=true; slimtrain "
              "uses batch statistics in training (running statistics in inference)");
  auto& g = c.graph();
  for (const auto& s : {mean, var}) {
    if (!g.isInitializer(s))
      SLIM_THROW(ModelError, "Mean/Variance '", s, "' must be persistable parameters");
    g.trainable.erase(s);
    g.buffers.insert(s);
  }
  if (c.programOnly())
    for (const auto& s : {scale, var})
      if (Tensor* t = c.init(s); t && t->dtype() == DType::kF32) t->fill(1.f);
  ops::Attrs a;
  a.set("epsilon", op.f("epsilon", 1e-5f));
  a.set("momentum", op.f("momentum", 0.9f));
  c.node("BatchNormalization", {x, scale, bias, mean, var}, {c.output(op.out("Y"))}, a);
  // MeanOut / VarianceOut are the running statistics, updated in place.
  auto mo = op.outputs("MeanOut"), vo = op.outputs("VarianceOut");
  if (mo.size() == 1) c.alias(mo[0], mean);
  if (vo.size() == 1) c.alias(vo[0], var);
}

void convertPool(PaddleConverter& c, const OpView& op) {
  checkNchw(op, "data_format");
  std::string x = c.input(op.in("X"));
  std::string out = c.output(op.out("Out"));
  std::string type = op.s("pooling_type", "max");
  if (type != "max" && type != "avg")
    SLIM_THROW(ModelError, "pooling_type '", type, "' is not supported (max, avg)");
  const bool max = type == "max";
  auto ksize = op.ints("ksize", {});
  checkPair(ksize, "ksize");
  bool global = op.b("global_pooling", false);
  const bool adaptive = op.b("adaptive", false);
  Shape xd;
  const bool known = c.dims(x, xd) && xd.size() == 4 && xd[2] > 0 && xd[3] > 0;
  ops::Attrs a;
  if (adaptive && !global) {
    if (ksize[0] == 1 && ksize[1] == 1) {
      global = true;
    } else if (known && xd[2] % ksize[0] == 0 && xd[3] % ksize[1] == 0) {
      // Adaptive pooling with an exact division is a plain pooling window.
      std::vector<int64_t> k{xd[2] / ksize[0], xd[3] / ksize[1]};
      a.set("kernel_shape", k);
      a.set("strides", k);
      c.node(max ? "MaxPool" : "AveragePool", {x}, {out}, a);
      return;
    } else {
      SLIM_THROW(ModelError, "adaptive pooling to ", shapeStr(ksize),
                 " needs a known input size divisible by it (input ",
                 known ? shapeStr(xd) : std::string("unknown"), ")");
    }
  }
  if (global) {
    if (!max) return c.node("GlobalAveragePool", {x}, {out});
    if (known) {
      a.set("kernel_shape", std::vector<int64_t>{xd[2], xd[3]});
      return c.node("MaxPool", {x}, {out}, a);
    }
    return c.node("GlobalMaxPool", {x}, {out});
  }
  auto strides = op.ints("strides", {1, 1});
  checkPair(strides, "strides");
  a.set("kernel_shape", ksize);
  a.set("strides", strides);
  setPadding(op, a, nullptr);
  bool ceil = op.b("ceil_mode", false);
  if (ceil && known && a.has("pads")) {
    // Paddle's ceil mode keeps a last window that starts in the end padding
    // (ONNX drops it). Extra end padding in floor mode gives Paddle's output
    // size; padding is ignored by max and by exclusive avg, and Paddle's
    // non-exclusive avg divides by the full kernel, as count_include_pad does.
    auto pads = a.getInts("pads");
    for (int i = 0; i < 2; ++i) {
      const int64_t in = xd[2 + i], span = in + pads[i] + pads[i + 2] - ksize[i];
      if (span < 0) continue;
      const int64_t o = (span + strides[i] - 1) / strides[i] + 1;
      pads[i + 2] += (o - 1) * strides[i] + ksize[i] - (in + pads[i] + pads[i + 2]);
    }
    a.set("pads", pads);
    ceil = false;
  }
  a.set("ceil_mode", static_cast<int64_t>(ceil));
  if (!max) a.set("count_include_pad", static_cast<int64_t>(!op.b("exclusive", true)));
  c.node(max ? "MaxPool" : "AveragePool", {x}, {out}, a);
}

// ---- activations ----

void clip(PaddleConverter& c, const std::string& x, float lo, float hi,
          const std::string& out) {
  std::string base = c.op().type() + "_" + std::to_string(c.op().index());
  c.node("Clip", {x, c.scalar(base + ".min", lo), c.scalar(base + ".max", hi)}, {out});
}

void convertRelu(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  c.node("Relu", {x}, {c.output(op.out("Out"))});
}

void convertRelu6(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  clip(c, x, 0.f, op.f("threshold", 6.f), c.output(op.out("Out")));
}

void convertLeakyRelu(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  ops::Attrs a;
  a.set("alpha", op.f("alpha", 0.02f));
  c.node("LeakyRelu", {x}, {c.output(op.out("Out"))}, a);
}

void convertSigmoid(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  c.node("Sigmoid", {x}, {c.output(op.out("Out"))});
}

void convertHardSigmoid(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  ops::Attrs a;
  a.set("alpha", op.f("slope", 0.2f));
  a.set("beta", op.f("offset", 0.5f));
  c.node("HardSigmoid", {x}, {c.output(op.out("Out"))}, a);
}

// Paddle: x * min(max(x + offset, 0), threshold) / scale; ONNX HardSwish is
// the 6/6/3 case, anything else is decomposed.
void convertHardSwish(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  const float th = op.f("threshold", 6.f), sc = op.f("scale", 6.f), off = op.f("offset", 3.f);
  std::string out = c.output(op.out("Out"));
  if (th == 6.f && sc == 6.f && off == 3.f) return c.node("HardSwish", {x}, {out});
  std::string base = out;
  std::string shifted = c.tmp(base + ".shifted"), clipped = c.tmp(base + ".clipped");
  std::string prod = c.tmp(base + ".prod");
  c.node("Add", {x, c.scalar(base + ".offset", off)}, {shifted});
  clip(c, shifted, 0.f, th, clipped);
  c.node("Mul", {x, clipped}, {prod});
  c.node("Div", {prod, c.scalar(base + ".scale", sc)}, {out});
}

// swish: x * sigmoid(beta * x).
void convertSwish(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  const float beta = op.f("beta", 1.f);
  std::string out = c.output(op.out("Out"));
  std::string sx = x;
  if (beta != 1.f) {
    sx = c.tmp(out + ".beta_x");
    c.node("Mul", {x, c.scalar(out + ".beta", beta)}, {sx});
  }
  std::string sig = c.tmp(out + ".sigmoid");
  c.node("Sigmoid", {sx}, {sig});
  c.node("Mul", {x, sig}, {out});
}

}  // namespace

void addNnConverters(std::map<std::string, OpConvertFn>& m) {
  m["conv2d"] = convertConv;
  m["depthwise_conv2d"] = convertConv;
  m["batch_norm"] = convertBatchNorm;
  m["pool2d"] = convertPool;
  m["relu"] = convertRelu;
  m["relu6"] = convertRelu6;
  m["leaky_relu"] = convertLeakyRelu;
  m["sigmoid"] = convertSigmoid;
  m["hard_sigmoid"] = convertHardSigmoid;
  m["hard_swish"] = convertHardSwish;
  m["swish"] = convertSwish;
}

}  // namespace slim::models::detail
