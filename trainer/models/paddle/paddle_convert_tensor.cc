// Paddle -> ONNX-named ops, part 2: elementwise ops (Paddle's `axis`
// broadcasting rewritten into numpy broadcasting), mul / matmul / matmul_v2,
// scale, softmax, concat, flatten, reshape, transpose, dropout, fill_constant.
#include <cstdlib>
#include <numeric>

#include "trainer/models/paddle/framework.pb.h"
#include "trainer/models/paddle/paddle_convert.h"

namespace slim::models::detail {
namespace {

std::string base(const PaddleConverter& c) {
  return c.op().type() + "_" + std::to_string(c.op().index());
}

std::string shapeConst(PaddleConverter& c, const std::vector<int64_t>& s) {
  return c.constant(base(c) + ".shape",
                    Tensor::fromInts({static_cast<int64_t>(s.size())}, s));
}

void reshape(PaddleConverter& c, const std::string& x, const std::vector<int64_t>& s,
             const std::string& out) {
  c.node("Reshape", {x, shapeConst(c, s)}, {out});
}

// Y of an elementwise op or of mul seen with a new shape: a parameter read by
// this op only is reshaped in place (it keeps its name), anything else goes
// through a Reshape node. `s` may use 0 (copy that dim) only for non-initializers.
std::string reshapedOperand(PaddleConverter& c, const std::string& paddle_name,
                            const std::string& y, const Shape& s_init,
                            const std::vector<int64_t>& s_node) {
  Tensor* t = c.init(y);
  if (t && c.consumers(paddle_name) == 1) {
    *t = t->reshaped(s_init);
    return y;
  }
  std::string out = c.tmp(y + ".reshaped");
  reshape(c, y, s_node, out);
  return out;
}

// Paddle elementwise: Y's dims align with X's starting at `axis` (-1: trailing).
void convertElementwise(PaddleConverter& c, const OpView& op, const char* onnx) {
  std::string py = op.in("Y");
  std::string x = c.input(op.in("X")), y = c.input(py);
  const int64_t axis = op.i("axis", -1);
  const int rx = c.rank(x), ry = c.rank(y);
  if (axis != -1 && !(rx >= 0 && ry >= 0 && axis == rx - ry)) {
    if (rx < 0 || ry < 0)
      SLIM_THROW(ModelError, "axis=", axis, " needs the ranks of X ('", x, "') and Y ('", y,
                 "'), which the program does not declare");
    if (axis < 0 || axis + ry > rx)
      SLIM_THROW(ModelError, "axis=", axis, " does not fit X rank ", rx, " and Y rank ", ry);
    Shape yd;
    c.dims(y, yd);
    const int64_t ones = rx - axis - ry;
    Shape s_init = yd;
    std::vector<int64_t> s_node(ry, 0);
    for (int64_t k = 0; k < ones; ++k) {
      s_init.push_back(1);
      s_node.push_back(1);
    }
    y = reshapedOperand(c, py, y, s_init, s_node);
  }
  c.node(onnx, {x, y}, {c.output(op.out("Out"))});
}

void convertAdd(PaddleConverter& c, const OpView& op) { convertElementwise(c, op, "Add"); }
void convertSub(PaddleConverter& c, const OpView& op) { convertElementwise(c, op, "Sub"); }
void convertMul(PaddleConverter& c, const OpView& op) { convertElementwise(c, op, "Mul"); }
void convertDiv(PaddleConverter& c, const OpView& op) { convertElementwise(c, op, "Div"); }

// mul: X flattened to 2-D at x_num_col_dims (leading dims kept), Y to 2-D at
// y_num_col_dims; out = X' @ Y' with shape X.dims[:xn] + Y.dims[yn:].
void convertFcMul(PaddleConverter& c, const OpView& op) {
  std::string py = op.in("Y");
  std::string x = c.input(op.in("X")), y = c.input(py);
  const int64_t xn = op.i("x_num_col_dims", 1), yn = op.i("y_num_col_dims", 1);
  Shape yd;
  if (!c.dims(y, yd) || yd.size() < 2 || yn < 1 || yn >= static_cast<int64_t>(yd.size()))
    SLIM_THROW(ModelError, "Y '", y, "' needs known dims of rank >= 2 with y_num_col_dims=",
               yn, " inside it");
  if (static_cast<int64_t>(yd.size()) != yn + 1)
    SLIM_THROW(ModelError, "Y with dims ", shapeStr(yd), " and y_num_col_dims=", yn,
               " would give an output of rank > x_num_col_dims+1 (not supported)");
  if (xn < 1) SLIM_THROW(ModelError, "x_num_col_dims must be >= 1, got ", xn);
  std::string out = c.output(op.out("Out"));
  std::string x2 = x;
  if (c.rank(x) != xn + 1) {
    x2 = c.tmp(out + ".x2d");
    if (xn == 1) {
      ops::Attrs a;
      a.set("axis", int64_t{1});
      c.node("Flatten", {x}, {x2}, a);
    } else {
      std::vector<int64_t> s(xn, 0);
      s.push_back(-1);
      reshape(c, x, s, x2);
    }
  }
  std::string y2 = y;
  if (yn > 1) {
    for (int64_t k = 0; k < yn + 1; ++k)
      if (yd[k] < 0) SLIM_THROW(ModelError, "Y '", y, "' has unknown dims ", shapeStr(yd));
    int64_t rows = 1;
    for (int64_t k = 0; k < yn; ++k) rows *= yd[k];
    y2 = reshapedOperand(c, py, y, {rows, yd[yn]}, {rows, yd[yn]});
  }
  c.node("MatMul", {x2, y2}, {out});
}

// Swaps the last two axes of `v` (rank known) into a fresh tensor.
std::string transposeLast2(PaddleConverter& c, const std::string& v) {
  const int r = c.rank(v);
  if (r < 0) SLIM_THROW(ModelError, "transposing '", v, "' needs its rank");
  if (r < 2) return v;
  std::vector<int64_t> perm(r);
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[r - 1], perm[r - 2]);
  ops::Attrs a;
  a.set("perm", perm);
  std::string out = c.tmp(v + ".T");
  c.node("Transpose", {v}, {out}, a);
  return out;
}

void matmulCommon(PaddleConverter& c, const OpView& op, bool tx, bool ty, float alpha) {
  std::string x = c.input(op.in("X")), y = c.input(op.in("Y"));
  if (tx) x = transposeLast2(c, x);
  if (ty) y = transposeLast2(c, y);
  std::string out = c.output(op.out("Out"));
  if (alpha == 1.f) return c.node("MatMul", {x, y}, {out});
  std::string prod = c.tmp(out + ".unscaled");
  c.node("MatMul", {x, y}, {prod});
  c.node("Mul", {prod, c.scalar(base(c) + ".alpha", alpha)}, {out});
}

void convertMatmul(PaddleConverter& c, const OpView& op) {
  matmulCommon(c, op, op.b("transpose_X", false), op.b("transpose_Y", false),
               op.f("alpha", 1.f));
}

void convertMatmulV2(PaddleConverter& c, const OpView& op) {
  matmulCommon(c, op, op.b("trans_x", false), op.b("trans_y", false), 1.f);
}

// scale: scale*x + bias (bias_after_scale) or scale*(x + bias).
void convertScale(PaddleConverter& c, const OpView& op) {
  if (!op.optIn("ScaleTensor").empty())
    SLIM_THROW(ModelError, "a ScaleTensor input is not supported (only the scale attribute)");
  std::string x = c.input(op.in("X"));
  const float s = op.f("scale", 1.f), b = op.f("bias", 0.f);
  const bool after = op.b("bias_after_scale", true);
  std::string out = c.output(op.out("Out"));
  if (s == 1.f && b == 0.f) return c.node("Identity", {x}, {out});
  if (b == 0.f) return c.node("Mul", {x, c.scalar(base(c) + ".scale", s)}, {out});
  if (s == 1.f) return c.node("Add", {x, c.scalar(base(c) + ".bias", b)}, {out});
  std::string mid = c.tmp(out + (after ? ".scaled" : ".biased"));
  if (after) {
    c.node("Mul", {x, c.scalar(base(c) + ".scale", s)}, {mid});
    c.node("Add", {mid, c.scalar(base(c) + ".bias", b)}, {out});
  } else {
    c.node("Add", {x, c.scalar(base(c) + ".bias", b)}, {mid});
    c.node("Mul", {mid, c.scalar(base(c) + ".scale", s)}, {out});
  }
}

void convertSoftmax(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  ops::Attrs a;
  a.set("axis", op.i("axis", -1));
  c.node("Softmax", {x}, {c.output(op.out("Out"))}, a);
}

void convertConcat(PaddleConverter& c, const OpView& op) {
  if (!op.optIn("AxisTensor").empty())
    SLIM_THROW(ModelError, "an AxisTensor input is not supported (only the axis attribute)");
  std::vector<std::string> ins;
  for (const auto& v : op.inputs("X")) ins.push_back(c.input(v));
  if (ins.empty()) SLIM_THROW(ModelError, "concat without inputs");
  ops::Attrs a;
  a.set("axis", op.i("axis", 0));
  c.node("Concat", ins, {c.output(op.out("Out"))}, a);
}

// flatten / flatten2: 2-D [prod(:axis), prod(axis:)], exactly ONNX Flatten.
void convertFlatten2(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  ops::Attrs a;
  a.set("axis", op.i("axis", 1));
  c.node("Flatten", {x}, {c.output(op.out("Out"))}, a);
}

// flatten_contiguous_range: merges dims start..stop into one.
void convertFlattenRange(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  Shape xd;
  if (!c.dims(x, xd)) SLIM_THROW(ModelError, "input '", x, "' has no declared dims");
  const int64_t r = static_cast<int64_t>(xd.size());
  int64_t start = op.i("start_axis", 1), stop = op.i("stop_axis", -1);
  if (start < 0) start += r;
  if (stop < 0) stop += r;
  if (r == 0) start = stop = 0;
  else if (start < 0 || stop >= r || start > stop)
    SLIM_THROW(ModelError, "start_axis/stop_axis ", start, "/", stop, " do not fit rank ", r);
  std::string out = c.output(op.out("Out"));
  if (start == 1 && stop == r - 1) {
    ops::Attrs a;
    a.set("axis", int64_t{1});
    return c.node("Flatten", {x}, {out}, a);
  }
  // Leading dims are copied (0 = same index in ONNX Reshape); trailing dims
  // sit at shifted indices, so they must be known.
  std::vector<int64_t> s(start, 0);
  s.push_back(-1);
  for (int64_t k = stop + 1; k < r; ++k) {
    if (xd[k] < 0)
      SLIM_THROW(ModelError, "dim ", k, " of '", x, "' (", shapeStr(xd), ") is unknown");
    s.push_back(xd[k]);
  }
  reshape(c, x, s, out);
}

void convertReshape2(PaddleConverter& c, const OpView& op) {
  if (!op.inputs("Shape").empty() || !op.inputs("ShapeTensor").empty())
    SLIM_THROW(ModelError, "Shape/ShapeTensor inputs are not supported (only the shape attribute)");
  std::string x = c.input(op.in("X"));
  reshape(c, x, op.ints("shape", {}), c.output(op.out("Out")));
}

void convertTranspose2(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  ops::Attrs a;
  a.set("perm", op.ints("axis", {}));
  c.node("Transpose", {x}, {c.output(op.out("Out"))}, a);
}

// dropout: upscale_in_train is ONNX Dropout; downgrade_in_infer keeps x*mask in
// training and x*(1-p) in inference, i.e. ONNX Dropout followed by *(1-p).
void convertDropout(PaddleConverter& c, const OpView& op) {
  std::string x = c.input(op.in("X"));
  const float p = op.f("dropout_prob", 0.5f);
  std::string impl = op.s("dropout_implementation", "downgrade_in_infer");
  if (impl != "downgrade_in_infer" && impl != "upscale_in_train")
    SLIM_THROW(ModelError, "unknown dropout_implementation '", impl, "'");
  if (!op.optIn("Seed").empty()) SLIM_THROW(ModelError, "a Seed input is not supported");
  std::string out = c.output(op.out("Out"));
  std::string ratio = c.scalar(base(c) + ".ratio", p);
  if (impl == "upscale_in_train") return c.node("Dropout", {x, ratio}, {out});
  std::string d = c.tmp(out + ".dropped");
  c.node("Dropout", {x, ratio}, {d});
  c.node("Mul", {d, c.scalar(base(c) + ".keep", 1.f - p)}, {out});
}

// fill_constant becomes an initializer named after its output.
void convertFillConstant(PaddleConverter& c, const OpView& op) {
  for (const char* slot : {"ShapeTensor", "ShapeTensorList", "ValueTensor"})
    if (!op.inputs(slot).empty())
      SLIM_THROW(ModelError, "a ", slot, " input is not supported (static shape/value only)");
  Shape shape = op.ints("shape", {});
  for (int64_t d : shape)
    if (d < 0) SLIM_THROW(ModelError, "fill_constant shape ", shapeStr(shape), " is not static");
  double value = op.f("value", 0.f);
  std::string sv = op.s("str_value", "");
  if (!sv.empty()) value = std::strtod(sv.c_str(), nullptr);
  const int64_t dt = op.i("dtype", proto::VarType::FP32);
  Tensor t;
  if (dt == proto::VarType::FP32 || dt == proto::VarType::FP64) {
    t = Tensor(shape, DType::kF32);
    t.fill(static_cast<float>(value));
  } else if (dt == proto::VarType::INT64 || dt == proto::VarType::INT32) {
    t = Tensor(shape, DType::kI64);
    int64_t* p = t.data<int64_t>();
    for (int64_t k = 0; k < t.numel(); ++k) p[k] = static_cast<int64_t>(value);
  } else {
    SLIM_THROW(ModelError, "fill_constant dtype ", dt, " is not supported (FP32/FP64/INT32/INT64)");
  }
  std::string out = c.output(op.out("Out"));
  c.graph().addInitializer(out, t);
}

}  // namespace

void addTensorConverters(std::map<std::string, OpConvertFn>& m) {
  m["elementwise_add"] = convertAdd;
  m["elementwise_sub"] = convertSub;
  m["elementwise_mul"] = convertMul;
  m["elementwise_div"] = convertDiv;
  m["mul"] = convertFcMul;
  m["matmul"] = convertMatmul;
  m["matmul_v2"] = convertMatmulV2;
  m["scale"] = convertScale;
  m["softmax"] = convertSoftmax;
  m["concat"] = convertConcat;
  m["flatten"] = convertFlatten2;
  m["flatten2"] = convertFlatten2;
  m["flatten_contiguous_range"] = convertFlattenRange;
  m["reshape"] = convertReshape2;
  m["reshape2"] = convertReshape2;
  m["transpose"] = convertTranspose2;
  m["transpose2"] = convertTranspose2;
  m["dropout"] = convertDropout;
  m["fill_constant"] = convertFillConstant;
}

}  // namespace slim::models::detail
