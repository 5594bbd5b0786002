// Internal: key tables of every section and key-path lookup for --set.
#include "trainer/config/schema.h"

#include <map>

namespace slim::config::detail {

const std::vector<std::string> kSections = {
    "Global", "Checkpoint", "Distributed", "QuantAware", "Quantization",
    "Distillation", "UnstructurePrune", "TrainConfig"};

const std::vector<std::string> kUnsupportedSections = {
    "ChannelPrune", "ASPPrune", "TransformerPrune", "QuantPost",
    "HyperParameterOptimization", "MultiTeacherDistillation", "Prune"};

const std::vector<KeyAlias> kKeyAliases = {
    {"Distillation", "distill_loss", "loss"},
    {"Distillation", "distill_node_pair", "node"},
    {"Distillation", "distill_lambda", "alpha"},
    {"UnstructurePrune", "pruned_ratio", "ratio"},
};

namespace {

const std::vector<std::string> kLrKeys = {
    "type", "learning_rate", "boundaries", "values", "T_max", "eta_min",
    "warmup_steps", "start_lr", "end_lr", "gamma"};

const std::map<std::string, std::vector<std::string>>& tables() {
  static const std::map<std::string, std::vector<std::string>> t = {
      {"", kSections},
      {"Global", {"model", "model_dir", "model_filename", "params_filename", "batch_size",
                  "eval_batch_size", "seed", "save_dir", "num_threads", "input_name",
                  "data_dir", "img_size", "resize_size", "Data"}},
      {"Global.Data", {"format", "train_images", "train_labels", "eval_images", "eval_labels",
                       "root", "mean", "std", "pixel_range", "shuffle", "transform",
                       "img_size", "resize_size", "interpolation", "scale", "ratio",
                       "random_flip", "channel_order", "max_image_pixels", "jpeg_dct_scaling",
                       "skip_bad_images", "decode_workers", "prefetch_batches"}},
      {"Checkpoint", {"dir", "every_iters", "keep_last", "resume"}},
      {"Distributed", {"backend", "bucket_mb", "timeout_s"}},
      {"QuantAware", {"quantize_op_types", "weight_bits", "activation_bits", "not_quant_pattern",
                      "use_pact", "activation_quantize_type", "weight_quantize_type", "dtype",
                      "window_size", "moving_rate", "for_tensorrt", "onnx_format",
                      "is_full_quantize", "signed_input_weight_bits"}},
      {"Distillation", {"loss", "node", "alpha", "teacher_model_dir", "teacher_model_filename",
                        "teacher_params_filename", "temperature", "task_loss",
                        "task_loss_weight", "distill_loss", "distill_node_pair",
                        "distill_lambda", "merge_feed"}},
      {"UnstructurePrune", {"prune_strategy", "prune_mode", "ratio", "threshold", "gmp_config",
                            "prune_params_type", "local_sparsity", "pruned_ratio"}},
      {"UnstructurePrune.gmp_config", {"stable_iterations", "pruning_iterations",
                                       "tunning_iterations", "resume_iteration",
                                       "pruning_steps", "initial_ratio"}},
      {"TrainConfig", {"epochs", "train_iter", "eval_iter", "logging_iter", "learning_rate",
                       "optimizer_builder", "optimizer", "optim_args", "origin_metric",
                       "target_metric", "eval_metric", "sparse_model", "renormalize_convs",
                       "use_fleet", "amp_config",
                       "recompute_config", "sharding_config"}},
      {"TrainConfig.learning_rate", kLrKeys},
      {"TrainConfig.optimizer_builder", {"optimizer", "weight_decay", "regularizer", "grad_clip"}},
      {"TrainConfig.optimizer_builder.optimizer", {"type", "momentum", "use_nesterov", "beta1",
                                                   "beta2", "epsilon", "weight_decay"}},
      {"TrainConfig.optimizer_builder.regularizer", {"type", "coeff"}},
      {"TrainConfig.optimizer_builder.grad_clip", {"type", "clip_norm"}},
      {"TrainConfig.optim_args", {"weight_decay", "momentum", "use_nesterov", "beta1", "beta2",
                                  "epsilon", "grad_clip", "grad_clip_args"}},
      {"TrainConfig.optim_args.grad_clip_args", {"clip_norm"}},
  };
  return t;
}

}  // namespace

const std::vector<std::string>* knownKeysAt(const std::string& path0) {
  std::string path = path0;
  if (path == "Quantization" || path.rfind("Quantization.", 0) == 0)
    path = "QuantAware" + path.substr(12);
  // LinearWarmup nests a schedule under learning_rate.learning_rate.
  const std::string lr = "TrainConfig.learning_rate";
  while (path.size() > lr.size() && path.rfind(lr + ".learning_rate", 0) == 0)
    path = lr + path.substr(lr.size() + 14);
  auto it = tables().find(path);
  return it == tables().end() ? nullptr : &it->second;
}

Node aliased(const Node& section, const std::string& current, const std::string& legacy) {
  Node a = section[current];
  Node b = section[legacy];
  if (a.present() && b.present())
    b.fail("both '" + current + "' and its older spelling '" + legacy +
           "' are given; keep one");
  return b.present() ? b : a;
}

}  // namespace slim::config::detail
