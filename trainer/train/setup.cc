// Config -> run pieces.
#include "trainer/train/setup.h"

#include <algorithm>

#include <filesystem>

#include "trainer/data/h5_dataset.h"
#include "trainer/data/idx.h"
#include "trainer/data/image_list.h"
#include "trainer/data/seg_list.h"
#include "trainer/models/load.h"

namespace slim::train {

using ::slim::detail::str;

data::ImageTransform imageTransform(const config::Data& d, bool eval) {
  data::ImageTransform t;
  t.kind = d.transform == "torchvision" ? data::TransformKind::kTorchvision
                                        : data::TransformKind::kAct;
  t.img_size = d.img_size;
  t.resize_size = d.resize_size;
  t.interp = data::parseInterp(d.interpolation);
  t.scale_min = d.scale[0];
  t.scale_max = d.scale[1];
  t.ratio_min = d.ratio[0];
  t.ratio_max = d.ratio[1];
  t.flip = d.random_flip;
  t.bgr = d.channel_order == "bgr";
  t.max_pixels = d.max_image_pixels;
  t.dct_scaling = d.jpeg_dct_scaling == "all" || (d.jpeg_dct_scaling == "train" && !eval);
  return t;
}

namespace {

// Sorted class sub-folder names of an ImageFolder root (the train split's
// names label the eval split too).
std::vector<std::string> classFolders(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.is_directory()) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

data::Dataset loadData(const config::Global& g, bool eval) {
  const config::Data& d = g.data;
  const std::string& images = eval ? d.eval_images : d.train_images;
  const std::string& labels = eval ? d.eval_labels : d.train_labels;
  if (images.empty()) return data::Dataset{};
  data::Dataset ds;
  if (d.format == "hdf5") {
    ds.source = data::openHdf5(images);
  } else if (d.format == "list") {
    ds.source = data::openImageList(images, d.root, imageTransform(d, eval));
  } else if (d.format == "seglist") {
    ds.source = data::openSegList(images, d.root, imageTransform(d, eval));
  } else if (d.format == "imagefolder") {
    std::vector<std::string> classes;
    if (eval) classes = classFolders(d.train_images);
    ds.source = data::openImageFolder(images, imageTransform(d, eval), &classes);
  } else {
    ds = data::loadIdx(images, labels);
  }
  ds.pixel_scale = ds.source->pixelType() == DType::kU8
                       ? static_cast<float>(d.pixel_range / 255.0)
                       : 1.0f;
  ds.mean.assign(d.mean.begin(), d.mean.end());
  ds.std.assign(d.std_dev.begin(), d.std_dev.end());
  ds.augment = !eval;
  ds.seed = static_cast<uint64_t>(g.seed);
  ds.skip_bad = d.skip_bad_images;
  data::validate(ds);
  return ds;
}

int64_t modelClasses(const graph::Graph& g) {
  if (g.outputs.empty()) return 0;
  const Shape& s = g.outputs[0].shape;
  return (s.size() == 2 || s.size() == 4) && s[1] > 0 ? s[1] : 0;
}

void checkInputName(const config::Global& g, const graph::Graph& model) {
  if (g.input_name.empty()) return;
  std::string names;
  for (const auto& v : model.inputs) {
    if (v.name == g.input_name) return;
    names += (names.empty() ? "'" : ", '") + v.name + "'";
  }
  SLIM_THROW(ConfigError, "Global.input_name: '", g.input_name, "' is not an input of model '",
             model.name, "' (its inputs: ", names, ")");
}

void checkLabels(const data::Dataset& ds, int64_t classes, const std::string& model) {
  if (!ds.source || classes <= 0) return;
  const data::LabelMax m = ds.source->maxLabel();
  if (m.value >= classes)
    SLIM_THROW(DataError, m.where, ": label ", m.value, " is outside the model's ", classes,
               " classes (", model, " outputs [N, ", classes,
               ds.source->labelShape().empty() ? "" : ", H, W", "]; labels must be 0..",
               classes - 1, ds.source->labelShape().empty() ? "" : " or 255 (ignored)", ")");
}

void checkInputData(const data::Dataset& ds, const graph::Graph& model) {
  if (!ds.source || model.inputs.empty()) return;
  const graph::ValueInfo& in = model.inputs[0];
  const bool int_input = in.dtype == DType::kI64 || in.dtype == DType::kI32;
  const std::string input = str("input '", in.name, "' of model '", model.name, "' is ",
                                dtypeName(in.dtype), " ", shapeStr(in.shape));
  if (ds.tokens() != int_input)
    SLIM_THROW(DataError, ds.describe(), ": dataset 'x' holds ",
               ds.tokens() ? "int64 token ids" : "images", " but ", input, " (expected ",
               int_input ? "integer token ids (N, T): an HDF5 'x' of int64 or int32"
                         : "float images (N, C, H, W): an HDF5 'x' of uint8 or float",
               ")");
  if (!ds.tokens()) return;
  if (in.dtype != DType::kI64)
    SLIM_THROW(DataError, ds.describe(), ": ", input, "; slimtrain feeds token ids as int64 "
               "(export the model with an int64 input, as torch.onnx.export does for "
               "torch.long ids)");
  const Shape s = ds.sampleShape();  // {T}
  if (in.shape.size() != 2 || (in.shape[1] > 0 && in.shape[1] != s[0]))
    SLIM_THROW(DataError, ds.describe(), ": dataset 'x' holds ", s[0], " token ids per sample "
               "(N, ", s[0], ") but ", input);
}

graph::Graph loadConfiguredModel(const config::Global& g) {
  if (!g.model.empty()) return models::loadModel(g.model, "", static_cast<uint64_t>(g.seed));
  if (g.model_dir.empty() && g.model_filename.empty())
    SLIM_THROW(ConfigError, "Global: set `model` (e.g. zoo:mobilenet_tiny) or `model_dir`");
  graph::Graph model = models::loadModelFrom(g.model_dir, g.model_filename, g.params_filename,
                                             static_cast<uint64_t>(g.seed));
  const std::string label = g.model_filename.empty()
                                ? g.model_dir
                                : (std::filesystem::path(g.model_dir) / g.model_filename).string();
  models::checkModelRuns(model, label);  // a broken model: exit 2 before training
  return model;
}

GraphIo addClassificationLoss(graph::Graph& g) {
  if (g.inputs.size() != 1 || g.outputs.size() != 1)
    SLIM_THROW(ModelError, "model '", g.name, "' must have one input and one output to be "
               "trained as a classifier (has ", g.inputs.size(), " inputs, ", g.outputs.size(),
               " outputs)");
  GraphIo io;
  io.image = g.inputs[0].name;
  io.logits = g.outputs[0].name;
  io.label = g.uniqueName("label");
  io.loss = g.uniqueName("loss");
  // A (N, classes, H, W) output is a segmentation net: (N, H, W) masks, the
  // per-pixel loss leaves out data::kIgnoreLabel as torchvision and PaddleSeg do.
  const bool seg = g.outputs[0].shape.size() == 4;
  g.inputs.push_back({io.label, seg ? Shape{-1, -1, -1} : Shape{-1}, DType::kI64});
  graph::Node ce{g.uniqueName("cross_entropy"), "SoftmaxCrossEntropyLoss",
                 {io.logits, io.label}, {io.loss}, {}};
  if (seg) ce.attrs.set("ignore_index", data::kIgnoreLabel);
  g.nodes.push_back(std::move(ce));
  g.outputs.push_back({io.loss, {}, DType::kF32});
  return io;
}

optim::OptimizerSpec toOptimizerSpec(const config::Optimizer& o) {
  optim::OptimizerSpec s;
  s.type = o.type;
  s.momentum = static_cast<float>(o.momentum);
  s.use_nesterov = o.use_nesterov;
  s.beta1 = static_cast<float>(o.beta1);
  s.beta2 = static_cast<float>(o.beta2);
  s.epsilon = static_cast<float>(o.epsilon);
  s.weight_decay = static_cast<float>(o.weight_decay);
  return s;
}

optim::LrSpec toLrSpec(const config::LrSchedule& c) {
  optim::LrSpec s;
  s.type = c.type;
  s.learning_rate = c.learning_rate;
  s.boundaries = c.boundaries;
  s.values = c.values;
  s.T_max = c.T_max;
  s.eta_min = c.eta_min;
  s.warmup_steps = c.warmup_steps;
  s.start_lr = c.start_lr;
  s.end_lr = c.end_lr;
  s.gamma = c.gamma;
  if (!c.after_warmup.empty()) s.inner = std::make_shared<optim::LrSpec>(toLrSpec(c.after_warmup[0]));
  return s;
}

int64_t totalIterations(const config::TrainConfig& t, int64_t batches_per_epoch) {
  int64_t by_epochs = t.epochs ? *t.epochs * batches_per_epoch : 0;
  if (t.train_iter && t.epochs) return std::min(*t.train_iter, by_epochs);
  if (t.train_iter) return *t.train_iter;
  return by_epochs;
}

}  // namespace slim::train
