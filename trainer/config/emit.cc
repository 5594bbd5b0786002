// resolvedYaml (the full resolved config, newest spellings, parseable back to
// an equal Config) and trajectoryDiff (refusing resumes under a changed run).
#include <charconv>
#include <map>

#include "trainer/config/config.h"
#include "trainer/config/yaml_node.h"

namespace slim::config {
namespace {

// Shortest text that parses back to the same double, always with a '.' or
// exponent so it reads as a float.
std::string num(double v) {
  char buf[64];
  auto [p, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, p);
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

class Writer {
 public:
  Writer() { out_ << YAML::BeginMap; }
  void begin(const std::string& key) { out_ << YAML::Key << key << YAML::Value << YAML::BeginMap; }
  void end() { out_ << YAML::EndMap; }
  void s(const std::string& key, const std::string& v) { out_ << YAML::Key << key << YAML::Value << v; }
  void sOpt(const std::string& key, const std::string& v) { if (!v.empty()) s(key, v); }
  void sNull(const std::string& key, const std::string& v) {
    out_ << YAML::Key << key << YAML::Value;
    if (v.empty()) out_ << YAML::Null; else out_ << v;
  }
  void i(const std::string& key, int64_t v) { out_ << YAML::Key << key << YAML::Value << v; }
  void d(const std::string& key, double v) { s(key, num(v)); }
  void b(const std::string& key, bool v) { out_ << YAML::Key << key << YAML::Value << v; }
  template <class T, class F>
  void list(const std::string& key, const std::vector<T>& v, F f) {
    out_ << YAML::Key << key << YAML::Value << YAML::Flow << YAML::BeginSeq;
    for (const auto& x : v) out_ << f(x);
    out_ << YAML::EndSeq;
  }
  void strs(const std::string& key, const std::vector<std::string>& v) {
    list(key, v, [](const std::string& x) { return x; });
  }
  void nums(const std::string& key, const std::vector<double>& v) { list(key, v, num); }
  YAML::Emitter& raw() { return out_; }
  std::string done() {
    out_ << YAML::EndMap;
    return std::string(out_.c_str()) + "\n";
  }

 private:
  YAML::Emitter out_;
};

void lr(Writer& w, const std::string& key, const LrSchedule& l) {
  if (l.type == "Constant") return w.d(key, l.learning_rate);
  w.begin(key);
  w.s("type", l.type);
  if (l.type == "PiecewiseDecay") {
    w.list("boundaries", l.boundaries, [](int64_t x) { return std::to_string(x); });
    w.nums("values", l.values);
  } else if (l.type == "CosineAnnealingDecay") {
    w.d("learning_rate", l.learning_rate);
    w.i("T_max", l.T_max);
    w.d("eta_min", l.eta_min);
  } else if (l.type == "ExponentialDecay") {
    w.d("learning_rate", l.learning_rate);
    w.d("gamma", l.gamma);
  } else {  // LinearWarmup
    if (l.after_warmup.empty()) w.d("learning_rate", l.learning_rate);
    else lr(w, "learning_rate", l.after_warmup[0]);
    w.i("warmup_steps", l.warmup_steps);
    w.d("start_lr", l.start_lr);
    w.d("end_lr", l.end_lr);
  }
  w.end();
}

void global(Writer& w, const Global& g) {
  w.begin("Global");
  w.sOpt("model", g.model);
  w.sOpt("model_dir", g.model_dir);
  w.sOpt("model_filename", g.model_filename);
  w.sOpt("params_filename", g.params_filename);
  w.i("batch_size", g.batch_size);
  w.i("eval_batch_size", g.eval_batch_size);
  w.i("seed", g.seed);
  w.s("save_dir", g.save_dir);
  w.i("num_threads", g.num_threads);
  w.sOpt("input_name", g.input_name);
  w.begin("Data");
  const Data& d = g.data;
  const bool image = d.format == "list" || d.format == "imagefolder";
  w.s("format", d.format);
  w.s("train_images", d.train_images);
  if (!image) w.s("train_labels", d.train_labels);
  w.sOpt("eval_images", d.eval_images);
  if (!image) w.sOpt("eval_labels", d.eval_labels);
  if (d.format == "list") w.sOpt("root", d.root);
  if (!d.mean.empty()) w.nums("mean", d.mean);
  if (!d.std_dev.empty()) w.nums("std", d.std_dev);
  w.d("pixel_range", d.pixel_range);
  w.b("shuffle", d.shuffle);
  if (image) {
    w.s("transform", d.transform);
    w.i("img_size", d.img_size);
    w.i("resize_size", d.resize_size);
    w.s("interpolation", d.interpolation);
    w.nums("scale", d.scale);
    w.nums("ratio", d.ratio);
    w.b("random_flip", d.random_flip);
    w.s("channel_order", d.channel_order);
    w.i("max_image_pixels", d.max_image_pixels);
    w.s("jpeg_dct_scaling", d.jpeg_dct_scaling);
    w.b("skip_bad_images", d.skip_bad_images);
  }
  w.i("decode_workers", d.decode_workers);
  w.i("prefetch_batches", d.prefetch_batches);
  w.end();
  w.end();
}

void compress(Writer& w, const Config& c) {
  if (c.quant) {
    const QuantAware& q = *c.quant;
    w.begin("QuantAware");
    w.strs("quantize_op_types", q.quantize_op_types);
    w.i("weight_bits", q.weight_bits);
    w.i("activation_bits", q.activation_bits);
    if (q.signed_input_weight_bits != 0)
      w.i("signed_input_weight_bits", q.signed_input_weight_bits);
    w.strs("not_quant_pattern", q.not_quant_pattern);
    w.b("use_pact", q.use_pact);
    w.s("activation_quantize_type", q.activation_quantize_type);
    w.s("weight_quantize_type", q.weight_quantize_type);
    w.s("dtype", q.dtype);
    w.i("window_size", q.window_size);
    w.d("moving_rate", q.moving_rate);
    w.b("for_tensorrt", q.for_tensorrt);
    w.b("onnx_format", q.onnx_format);
    w.b("is_full_quantize", q.is_full_quantize);
    w.end();
  }
  if (c.distill) {
    const Distillation& d = *c.distill;
    w.begin("Distillation");
    if (d.autoNodes()) {
      w.s("loss", d.groups[0].loss);
      w.d("alpha", d.groups[0].alpha);
    } else {
      YAML::Emitter& e = w.raw();
      e << YAML::Key << "node" << YAML::Value << YAML::Flow << YAML::BeginSeq;
      for (const auto& g : d.groups) {
        e << YAML::BeginSeq;
        for (const auto& p : g.pairs) e << p.teacher << p.student;
        e << YAML::EndSeq;
      }
      e << YAML::EndSeq;
      w.list("loss", d.groups, [](const DistillGroup& g) { return g.loss; });
      w.list("alpha", d.groups, [](const DistillGroup& g) { return num(g.alpha); });
    }
    w.sOpt("teacher_model_dir", d.teacher_model_dir);
    w.sOpt("teacher_model_filename", d.teacher_model_filename);
    w.sOpt("teacher_params_filename", d.teacher_params_filename);
    w.d("temperature", d.temperature);
    if (!d.task_loss.empty()) {
      w.s("task_loss", d.task_loss);
      w.d("task_loss_weight", d.task_loss_weight);
    }
    w.end();
  }
  if (c.prune) {
    const UnstructurePrune& p = *c.prune;
    w.begin("UnstructurePrune");
    w.sNull("prune_strategy", p.prune_strategy);
    w.s("prune_mode", p.prune_mode);
    w.d("ratio", p.ratio);
    w.d("threshold", p.threshold);
    if (p.gmp_config) {
      const GmpConfig& g = *p.gmp_config;
      w.begin("gmp_config");
      if (g.stable_iterations) w.i("stable_iterations", *g.stable_iterations);
      if (g.pruning_iterations) w.i("pruning_iterations", *g.pruning_iterations);
      if (g.tunning_iterations) w.i("tunning_iterations", *g.tunning_iterations);
      if (g.resume_iteration) w.i("resume_iteration", *g.resume_iteration);
      if (g.pruning_steps) w.i("pruning_steps", *g.pruning_steps);
      if (g.initial_ratio) w.d("initial_ratio", *g.initial_ratio);
      w.end();
    }
    w.sNull("prune_params_type", p.prune_params_type);
    w.b("local_sparsity", p.local_sparsity);
    w.end();
  }
}

void train(Writer& w, const TrainConfig& t) {
  w.begin("TrainConfig");
  if (t.epochs) w.i("epochs", *t.epochs);
  if (t.train_iter) w.i("train_iter", *t.train_iter);
  w.i("eval_iter", t.eval_iter);
  w.i("logging_iter", t.logging_iter);
  lr(w, "learning_rate", t.learning_rate);
  const Optimizer& o = t.optimizer;
  w.begin("optimizer_builder");
  w.begin("optimizer");
  w.s("type", o.type);
  if (o.type == "Momentum") {
    w.d("momentum", o.momentum);
    w.b("use_nesterov", o.use_nesterov);
  }
  if (o.type == "Adam" || o.type == "AdamW") {
    w.d("beta1", o.beta1);
    w.d("beta2", o.beta2);
    w.d("epsilon", o.epsilon);
  }
  w.end();
  w.d("weight_decay", o.weight_decay);
  if (o.grad_clip_norm > 0) {
    w.begin("grad_clip");
    w.s("type", "ClipGradByGlobalNorm");
    w.d("clip_norm", o.grad_clip_norm);
    w.end();
  }
  w.end();
  if (t.origin_metric) w.d("origin_metric", *t.origin_metric);
  if (t.target_metric) w.d("target_metric", *t.target_metric);
  w.s("eval_metric", t.eval_metric);
  w.b("sparse_model", t.sparse_model);
  if (t.renormalize_convs != "auto") w.s("renormalize_convs", t.renormalize_convs);
  w.end();
}

// Leaf values by dotted key path; lists rendered in flow form.
std::string flowText(const YAML::Node& n) {
  if (n.IsSequence()) {
    std::string s = "[";
    for (size_t i = 0; i < n.size(); ++i) s += (i ? ", " : "") + flowText(n[i]);
    return s + "]";
  }
  if (n.IsNull()) return "null";
  return n.Scalar();
}

void flatten(const YAML::Node& n, const std::string& prefix, std::map<std::string, std::string>& out) {
  if (n.IsMap()) {
    for (auto it = n.begin(); it != n.end(); ++it)
      flatten(it->second, detail::joinPath(prefix, it->first.Scalar()), out);
  } else {
    out[prefix] = flowText(n);
  }
}

}  // namespace

const std::vector<std::string> kNonTrajectoryKeys = {
    "Global.save_dir", "Global.eval_batch_size", "Global.num_threads",
    "Global.Data.eval_images", "Global.Data.eval_labels", "Global.Data.resize_size",
    "Global.Data.skip_bad_images", "Global.Data.decode_workers", "Global.Data.prefetch_batches",
    "Checkpoint.", "Distributed.",
    "TrainConfig.logging_iter", "TrainConfig.eval_iter", "TrainConfig.origin_metric",
    "TrainConfig.target_metric", "TrainConfig.eval_metric"};

std::string resolvedYaml(const Config& c) {
  Writer w;
  global(w, c.global);
  w.begin("Checkpoint");
  w.s("dir", c.checkpoint.dir);
  w.i("every_iters", c.checkpoint.every_iters);
  w.i("keep_last", c.checkpoint.keep_last);
  w.s("resume", c.checkpoint.resume);
  w.end();
  w.begin("Distributed");
  w.s("backend", c.distributed.backend);
  w.d("bucket_mb", c.distributed.bucket_mb);
  w.d("timeout_s", c.distributed.timeout_s);
  w.end();
  compress(w, c);
  train(w, c.train);
  return w.done();
}

std::vector<std::string> trajectoryDiff(const Config& a, const Config& b) {
  std::map<std::string, std::string> fa, fb;
  flatten(YAML::Load(resolvedYaml(a)), "", fa);
  flatten(YAML::Load(resolvedYaml(b)), "", fb);
  std::map<std::string, std::pair<std::string, std::string>> all;
  for (const auto& [k, v] : fa) all[k] = {v, "<absent>"};
  for (const auto& [k, v] : fb) {
    if (!all.count(k)) all[k] = {"<absent>", v};
    else all[k].second = v;
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : all) {
    bool ignored = false;
    for (const auto& n : kNonTrajectoryKeys)
      ignored = ignored || k == n || (n.back() == '.' && k.rfind(n, 0) == 0);
    if (!ignored && v.first != v.second) out.push_back(k + ": " + v.first + " -> " + v.second);
  }
  return out;
}

}  // namespace slim::config
