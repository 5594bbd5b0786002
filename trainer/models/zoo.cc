// The zoo: mobilenet_tiny (conv3x3 stem + four depthwise-separable blocks +
// global average pool + FC) and LeNet-5. Parameters get PyTorch's default
// initialisation (kaiming_uniform with a = sqrt(5), i.e. U(+-1/sqrt(fan_in))
// for weights and biases; BN scale 1, bias 0, running mean 0, var 1).
#include "trainer/models/zoo.h"

#include <cmath>

#include "trainer/core/rng.h"

namespace slim::models {
namespace {

using graph::Graph;
using graph::Node;

class Builder {
 public:
  Builder(Graph& g, uint64_t seed) : g_(g), rng_(seed) {}

  Tensor uniform(Shape shape, int64_t fan_in) {
    Tensor t(std::move(shape));
    const float bound = 1.0f / std::sqrt(static_cast<float>(fan_in));
    for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = (2.f * rng_.uniform() - 1.f) * bound;
    return t;
  }

  // Conv without bias (a BN follows): x -> name.
  std::string conv(const std::string& name, const std::string& x, int64_t cin,
                   int64_t cout, int64_t k, int64_t stride, int64_t group) {
    const int64_t fan_in = (cin / group) * k * k;
    g_.addInitializer(name + ".weight", uniform({cout, cin / group, k, k}, fan_in), true);
    Node n{name, "Conv", {x, name + ".weight"}, {name}, {}};
    n.attrs.set("kernel_shape", std::vector<int64_t>{k, k});
    n.attrs.set("strides", std::vector<int64_t>{stride, stride});
    const int64_t p = k / 2;
    n.attrs.set("pads", std::vector<int64_t>{p, p, p, p});
    n.attrs.set("group", group);
    g_.nodes.push_back(n);
    return name;
  }

  std::string convBias(const std::string& name, const std::string& x, int64_t cin,
                       int64_t cout, int64_t k, int64_t pad) {
    const int64_t fan_in = cin * k * k;
    g_.addInitializer(name + ".weight", uniform({cout, cin, k, k}, fan_in), true);
    g_.addInitializer(name + ".bias", uniform({cout}, fan_in), true);
    Node n{name, "Conv", {x, name + ".weight", name + ".bias"}, {name}, {}};
    n.attrs.set("kernel_shape", std::vector<int64_t>{k, k});
    n.attrs.set("pads", std::vector<int64_t>{pad, pad, pad, pad});
    g_.nodes.push_back(n);
    return name;
  }

  std::string bn(const std::string& name, const std::string& x, int64_t c) {
    Tensor scale({c}), var({c});
    scale.fill(1.f);
    var.fill(1.f);
    g_.addInitializer(name + ".scale", scale, true);
    g_.addInitializer(name + ".bias", Tensor({c}), true);
    g_.addInitializer(name + ".mean", Tensor({c}), false, true);
    g_.addInitializer(name + ".var", var, false, true);
    Node n{name, "BatchNormalization",
           {x, name + ".scale", name + ".bias", name + ".mean", name + ".var"}, {name}, {}};
    n.attrs.set("epsilon", 1e-5f);
    n.attrs.set("momentum", 0.9f);  // PyTorch momentum 0.1 in ONNX's convention
    g_.nodes.push_back(n);
    return name;
  }

  std::string unary(const std::string& op, const std::string& name, const std::string& x) {
    g_.nodes.push_back(Node{name, op, {x}, {name}, {}});
    return name;
  }

  std::string maxpool2(const std::string& name, const std::string& x) {
    Node n{name, "MaxPool", {x}, {name}, {}};
    n.attrs.set("kernel_shape", std::vector<int64_t>{2, 2});
    n.attrs.set("strides", std::vector<int64_t>{2, 2});
    g_.nodes.push_back(n);
    return name;
  }

  std::string flatten(const std::string& name, const std::string& x) {
    Node n{name, "Flatten", {x}, {name}, {}};
    n.attrs.set("axis", int64_t{1});
    g_.nodes.push_back(n);
    return name;
  }

  // Fully connected (Gemm, weight [out, in] as PyTorch stores it).
  std::string fc(const std::string& name, const std::string& x, int64_t in, int64_t out) {
    g_.addInitializer(name + ".weight", uniform({out, in}, in), true);
    g_.addInitializer(name + ".bias", uniform({out}, in), true);
    Node n{name, "Gemm", {x, name + ".weight", name + ".bias"}, {name}, {}};
    n.attrs.set("transB", int64_t{1});
    g_.nodes.push_back(n);
    return name;
  }

 private:
  Graph& g_;
  Rng rng_;
};

void setIo(Graph& g, int64_t cin, const std::string& out, int64_t classes) {
  g.inputs = {{"image", {-1, cin, 28, 28}, DType::kF32}};
  g.outputs = {{out, {-1, classes}, DType::kF32}};
}

// conv3x3(cin->32)+BN+ReLU; dw-separable blocks to 64 (s2), 64, 128 (s2), 128;
// global average pool; FC 128 -> classes.
Graph mobilenetTiny(uint64_t seed, int64_t cin, int64_t classes) {
  Graph g;
  g.name = "mobilenet_tiny";
  Builder b(g, seed);
  std::string x = b.conv("conv_0", "image", cin, 32, 3, 1, 1);
  x = b.unary("Relu", "relu_0", b.bn("bn_0", x, 32));
  struct Block { int64_t cin, cout, stride; };
  const Block blocks[] = {{32, 64, 2}, {64, 64, 1}, {64, 128, 2}, {128, 128, 1}};
  int i = 1;
  for (const Block& blk : blocks) {
    const std::string k = std::to_string(i++);
    x = b.conv("dw_" + k, x, blk.cin, blk.cin, 3, blk.stride, blk.cin);
    x = b.unary("Relu", "dw_relu_" + k, b.bn("dw_bn_" + k, x, blk.cin));
    x = b.conv("pw_" + k, x, blk.cin, blk.cout, 1, 1, 1);
    x = b.unary("Relu", "pw_relu_" + k, b.bn("pw_bn_" + k, x, blk.cout));
  }
  x = b.unary("GlobalAveragePool", "pool", x);
  x = b.flatten("flatten", x);
  b.fc("logits", x, 128, classes);
  setIo(g, cin, "logits", classes);
  return g;
}

// LeNet-5 with ReLU and max pooling (28x28 input, first conv padded).
Graph lenet5(uint64_t seed, int64_t cin, int64_t classes) {
  Graph g;
  g.name = "lenet5";
  Builder b(g, seed);
  std::string x = b.unary("Relu", "relu_1", b.convBias("conv_1", "image", cin, 6, 5, 2));
  x = b.maxpool2("pool_1", x);
  x = b.unary("Relu", "relu_2", b.convBias("conv_2", x, 6, 16, 5, 0));
  x = b.maxpool2("pool_2", x);
  x = b.flatten("flatten", x);
  x = b.unary("Relu", "relu_3", b.fc("fc_1", x, 400, 120));
  x = b.unary("Relu", "relu_4", b.fc("fc_2", x, 120, 84));
  b.fc("logits", x, 84, classes);
  setIo(g, cin, "logits", classes);
  return g;
}

}  // namespace

std::vector<std::string> zooModelNames() { return {"mobilenet_tiny", "lenet5"}; }

graph::Graph buildZooModel(const std::string& name, uint64_t seed, int64_t in_channels,
                           int64_t num_classes) {
  std::string n = name.rfind("zoo:", 0) == 0 ? name.substr(4) : name;
  if (n == "mobilenet_tiny") return mobilenetTiny(seed, in_channels, num_classes);
  if (n == "lenet5") return lenet5(seed, in_channels, num_classes);
  SLIM_THROW(ConfigError, "unknown zoo model '", name,
             "'; known: zoo:mobilenet_tiny, zoo:lenet5");
}

}  // namespace slim::models
