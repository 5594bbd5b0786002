// Parser for TrainConfig: epochs/iterations, learning-rate schedules and the
// optimizer in both its newer (optimizer_builder) and legacy (optimizer +
// optim_args) forms (act-reference §2.4, §6.5).
#include <algorithm>

#include "trainer/config/schema.h"
#include "trainer/config/suggest.h"
#include "trainer/core/log.h"

namespace slim::config::detail {
namespace {

const std::vector<std::string> kLrTypes = {"PiecewiseDecay", "CosineAnnealingDecay",
                                           "LinearWarmup", "ExponentialDecay"};
const std::vector<std::string> kOtherPaddleLr = {
    "NoamDecay", "PolynomialDecay", "NaturalExpDecay", "InverseTimeDecay", "MultiStepDecay",
    "StepDecay", "LambdaDecay", "ReduceOnPlateau", "MultiplicativeDecay", "OneCycleLR",
    "CyclicLR", "LinearLR", "CosineAnnealingWarmRestarts"};
const std::vector<std::string> kOptimizers = {"SGD", "Momentum", "Adam", "AdamW"};
const std::vector<std::string> kOtherPaddleOpt = {"Lamb", "RMSProp", "Adagrad", "Adadelta",
                                                  "Adamax", "LBFGS", "NAdam", "RAdam", "ASGD", "Rprop"};

double positiveF(const Node& n) {
  const double v = n.f64();
  if (!(v > 0)) n.fail("expected a positive number, found " + n.str());
  return v;
}

// A type name from `supported`, "not supported yet" for `other`, did-you-mean
// otherwise.
std::string typeName(const Node& t, const std::vector<std::string>& supported,
                     const std::vector<std::string>& other, const char* what) {
  if (!t.present()) t.fail("required key is missing (the " + std::string(what) + " type)");
  const std::string s = t.str();
  if (std::find(other.begin(), other.end(), s) != other.end())
    t.fail(std::string(what) + " type '" + s + "' is not supported yet");
  return t.choice(supported);
}

// Rejects keys of `n` that are not parameters of `type` (beyond `common`).
void onlyKeys(const Node& n, const std::string& type, const std::vector<std::string>& own,
              const std::vector<std::string>& common) {
  if (!n.present()) return;
  for (auto it = n.raw().begin(); it != n.raw().end(); ++it) {
    const std::string k = it->first.Scalar();
    if (std::find(common.begin(), common.end(), k) != common.end()) continue;
    if (std::find(own.begin(), own.end(), k) != own.end()) continue;
    std::string list;
    for (const auto& o : own) list += (list.empty() ? "" : ", ") + o;
    n[k].fail("'" + k + "' is not a parameter of " + type + " (its parameters: " +
              (list.empty() ? "none" : list) + ")");
  }
}

LrSchedule parseLr(const Node& n, bool nested) {
  LrSchedule lr;
  if (n.isScalar()) {
    lr.learning_rate = positiveF(n);
    return lr;
  }
  if (!n.isMap()) n.fail("expected a float or a map with a 'type', found " + n.found());
  lr.type = typeName(n["type"], kLrTypes, kOtherPaddleLr, "learning-rate schedule");
  n.checkKeys(*knownKeysAt("TrainConfig.learning_rate"));
  auto need = [&](const char* key) {
    if (!n.has(key)) n[key].fail("required key for " + lr.type + " is missing");
    return n[key];
  };
  if (lr.type == "PiecewiseDecay") {
    onlyKeys(n, lr.type, {"boundaries", "values"}, {"type"});
    lr.boundaries = need("boundaries").i64ListIn(0, kMaxIterations);
    lr.values = need("values").f64List(false);
    for (size_t i = 1; i < lr.boundaries.size(); ++i)
      if (lr.boundaries[i] <= lr.boundaries[i - 1]) n["boundaries"].fail("expected increasing boundaries");
    if (lr.values.size() != lr.boundaries.size() + 1)
      n["values"].fail("expected len(values) = len(boundaries) + 1 = " +
                       std::to_string(lr.boundaries.size() + 1) + ", found " +
                       std::to_string(lr.values.size()) + " values");
    lr.learning_rate = lr.values[0];
  } else if (lr.type == "CosineAnnealingDecay") {
    onlyKeys(n, lr.type, {"learning_rate", "T_max", "eta_min"}, {"type"});
    lr.learning_rate = positiveF(need("learning_rate"));
    lr.T_max = need("T_max").i64In(1, kMaxIterations);
    if (n.has("eta_min")) lr.eta_min = n["eta_min"].f64();
  } else if (lr.type == "ExponentialDecay") {
    onlyKeys(n, lr.type, {"learning_rate", "gamma"}, {"type"});
    lr.learning_rate = positiveF(need("learning_rate"));
    lr.gamma = need("gamma").f64();
    if (!(lr.gamma > 0 && lr.gamma <= 1)) n["gamma"].fail("expected a value in (0, 1], found " + n["gamma"].str());
  } else {  // LinearWarmup
    if (nested) n["type"].fail("LinearWarmup cannot wrap another LinearWarmup");
    onlyKeys(n, lr.type, {"learning_rate", "warmup_steps", "start_lr", "end_lr"}, {"type"});
    Node inner = need("learning_rate");
    if (inner.isMap()) {
      lr.after_warmup.push_back(parseLr(inner, true));
      lr.learning_rate = 0.0;
    } else {
      lr.learning_rate = positiveF(inner);
    }
    lr.warmup_steps = need("warmup_steps").i64In(1, kMaxIterations);
    lr.start_lr = need("start_lr").f64();
    lr.end_lr = need("end_lr").f64();
  }
  return lr;
}

// Reads the per-type optimizer parameters from `args` into `o`.
void optimizerArgs(const Node& args, Optimizer& o, const std::vector<std::string>& common) {
  std::vector<std::string> own;
  if (o.type == "Momentum") own = {"momentum", "use_nesterov"};
  if (o.type == "Adam" || o.type == "AdamW") own = {"beta1", "beta2", "epsilon"};
  onlyKeys(args, o.type, own, common);
  auto unit = [&](const char* key, double& out) {
    if (!args.has(key)) return;
    out = args[key].f64();
    if (!(out >= 0 && out < 1)) args[key].fail("expected a value in [0, 1), found " + args[key].str());
  };
  unit("momentum", o.momentum);
  unit("beta1", o.beta1);
  unit("beta2", o.beta2);
  if (args.has("use_nesterov")) o.use_nesterov = args["use_nesterov"].boolean();
  if (args.has("epsilon")) o.epsilon = positiveF(args["epsilon"]);
}

double weightDecay(const Node& n) {
  const double v = n.f64();
  if (!(v >= 0)) n.fail("expected >= 0, found " + n.str());
  return v;
}

// `args_keys`: the key table of the map holding clip_norm.
double clipNorm(const Node& type, const Node& args, const char* args_keys) {
  const std::string t = typeName(type, {"ClipGradByGlobalNorm"}, {"ClipGradByNorm", "ClipGradByValue"},
                                 "gradient clipping");
  args.checkKeys(*knownKeysAt(args_keys));
  if (!args.has("clip_norm")) args["clip_norm"].fail("required key for " + t + " is missing");
  return positiveF(args["clip_norm"]);
}

Optimizer parseBuilder(const Node& b) {
  Optimizer o;
  b.checkKeys(*knownKeysAt("TrainConfig.optimizer_builder"));
  Node opt = b["optimizer"];
  opt.checkKeys(*knownKeysAt("TrainConfig.optimizer_builder.optimizer"));
  if (opt.present()) o.type = typeName(opt["type"], kOptimizers, kOtherPaddleOpt, "optimizer");
  optimizerArgs(opt, o, {"type", "weight_decay"});
  bool decay_given = false;
  if (opt.has("weight_decay") && b.has("weight_decay"))
    opt["weight_decay"].fail("weight_decay is given both here and in optimizer_builder; keep one");
  for (const Node& w : {b["weight_decay"], opt["weight_decay"]}) {
    if (w.present()) { o.weight_decay = weightDecay(w); decay_given = true; }
  }
  Node reg = b["regularizer"];
  if (reg.present()) {
    reg.checkKeys(*knownKeysAt("TrainConfig.optimizer_builder.regularizer"));
    typeName(reg["type"], {"L2Decay"}, {"L1Decay"}, "regularizer");
    if (o.type == "AdamW") reg.fail("AdamW takes weight_decay (decoupled), not a regularizer");
    if (!reg.has("coeff")) reg["coeff"].fail("required key for L2Decay is missing");
    if (decay_given) log::warn(reg.where(), ": optimizer_builder.regularizer overrides weight_decay (as in ACT)");
    o.weight_decay = weightDecay(reg["coeff"]);
    decay_given = true;
  }
  if (!decay_given && o.type == "AdamW") o.weight_decay = 0.01;
  Node clip = b["grad_clip"];
  if (clip.present()) {
    o.grad_clip_norm = clipNorm(clip["type"], clip, "TrainConfig.optimizer_builder.grad_clip");
  }
  return o;
}

Optimizer parseLegacyOptimizer(const Node& t) {
  Optimizer o;
  Node name = t["optimizer"];
  if (name.present()) {
    if (!name.isScalar())
      name.fail("expected an optimizer name (legacy form; the newer form is "
                "optimizer_builder: {optimizer: {type: ...}}), found " + name.found());
    o.type = typeName(name, kOptimizers, kOtherPaddleOpt, "optimizer");
  }
  Node args = t["optim_args"];
  args.checkKeys(*knownKeysAt("TrainConfig.optim_args"));
  optimizerArgs(args, o, {"weight_decay", "grad_clip", "grad_clip_args"});
  if (args.has("weight_decay")) o.weight_decay = weightDecay(args["weight_decay"]);
  else if (o.type == "AdamW") o.weight_decay = 0.01;
  if (args.has("grad_clip")) {
    o.grad_clip_norm = clipNorm(args["grad_clip"], args["grad_clip_args"],
                                "TrainConfig.optim_args.grad_clip_args");
  } else if (args.has("grad_clip_args")) {
    args["grad_clip_args"].fail("grad_clip_args needs grad_clip: ClipGradByGlobalNorm");
  }
  return o;
}

}  // namespace

TrainConfig parseTrain(const Node& n) {
  TrainConfig t;
  if (!n.present()) n.fail("required section is missing (needs epochs or train_iter)");
  n.checkKeys(*knownKeysAt("TrainConfig"));
  for (const char* k : {"amp_config", "recompute_config", "sharding_config"})
    if (n[k].raw().IsDefined())
      n[k].fail(std::string(k) + " is not supported (slimtrain trains in float32 without "
                "recompute or sharding); remove the key");
  if (n.has("epochs")) t.epochs = n["epochs"].i64In(1, kMaxEpochs);
  if (n.has("train_iter")) t.train_iter = n["train_iter"].i64In(1, kMaxIterations);
  if (!t.epochs && !t.train_iter) n.fail("one of 'epochs' or 'train_iter' is required");
  if (t.epochs && t.train_iter && n.source() && n.source()->user_file)  // config.h TrainConfig
    log::info0(n["train_iter"].where(), ": TrainConfig has both epochs (", *t.epochs,
               ") and train_iter (", *t.train_iter,
               "): training stops at whichever comes first, as in ACT");
  if (n.has("eval_iter")) t.eval_iter = n["eval_iter"].i64In(1, kMaxIterations);
  if (n.has("logging_iter")) t.logging_iter = n["logging_iter"].i64In(1, kMaxIterations);
  if (n.has("learning_rate")) t.learning_rate = parseLr(n["learning_rate"], false);
  if (n.has("optimizer_builder") && (n.has("optimizer") || n.has("optim_args")))
    n[n.has("optimizer") ? "optimizer" : "optim_args"].fail(
        "give either optimizer_builder or the older optimizer + optim_args, not both");
  t.optimizer = n.has("optimizer_builder") ? parseBuilder(n["optimizer_builder"])
                                           : parseLegacyOptimizer(n);
  if (n.has("origin_metric")) t.origin_metric = n["origin_metric"].f64();
  if (n.has("target_metric")) t.target_metric = n["target_metric"].f64();
  if (n.has("eval_metric"))
    t.eval_metric = n["eval_metric"].choice({"auto", "top1", "miou", "pixel_acc", "distill_loss"});
  if (n.has("sparse_model")) t.sparse_model = n["sparse_model"].boolean();
  if (n.has("renormalize_convs"))
    t.renormalize_convs = n["renormalize_convs"].choice({"auto", "true", "false"});
  if (n.has("use_fleet")) {
    n["use_fleet"].boolean();
    log::info0("TrainConfig.use_fleet is ignored: the launcher detects the ranks");
  }
  return t;
}

}  // namespace slim::config::detail
