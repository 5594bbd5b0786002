// Typed, validated slimtrain configuration: every YAML section (ACT's sections
// in both their older and newer spellings, plus slimtrain's Global/Checkpoint/
// Distributed) as plain structs with defaults filled in. SEMANTICS.md is the
// user-facing description; act-reference.md §2 gives ACT's schema and defaults.
// Every error is a slim::ConfigError (exit code 2) naming file, line, column,
// key path, what was expected and what was found. Deliberately stricter than
// ACT: an unknown top-level section is an error naming the closest known one
// (ACT ignores it, so a typo like `Distilation` would silently drop a
// strategy); ChannelPrune, ASPPrune, TransformerPrune, QuantPost,
// HyperParameterOptimization, MultiTeacherDistillation and the legacy Prune
// are rejected as "not supported yet". Sections may appear in any
// combination; which strategies run together is the trainer's decision.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace slim::config {

/// Bounds of the integer keys, checked at parse time; a value outside fails
/// with the file, line, column, key as written, the range and the value.
/// Iteration counts (TrainConfig.train_iter, eval_iter, logging_iter,
/// Checkpoint.every_iters, UnstructurePrune.gmp_config.*, learning-rate
/// T_max, warmup_steps, boundaries) are at most kMaxIterations.
inline constexpr int64_t kMaxIterations = 1'000'000'000;
inline constexpr int64_t kMaxEpochs = 1'000'000;        ///< TrainConfig.epochs
inline constexpr int64_t kMaxBatchSize = 1'000'000;     ///< Global.batch_size, eval_batch_size
inline constexpr int64_t kMaxKeepLast = 1'000;          ///< Checkpoint.keep_last
/// Global.num_threads in a config parsed without this machine's core count
/// (parseConfigString); loadConfig bounds it by 4 x the online cores.
inline constexpr int64_t kMaxThreadsAnyMachine = 65'536;
/// QuantAware.window_size: range_abs_max keeps its window position in a
/// float32 counter below 2 x window_size, exact only up to 2^24.
inline constexpr int64_t kMaxWindowSize = (int64_t{1} << 23) - 1;
/// weight_bits, activation_bits, signed_input_weight_bits: 1 bit leaves no
/// positive level in the symmetric quantizer (fake_quant_ops).
inline constexpr int64_t kMinQuantBits = 2, kMaxQuantBits = 16;

/// Global.Data: the data set (slimtrain's own section), or what ACT's
/// `Global.data_dir` form resolves to (format list, ACT's transform).
struct Data {
  /// "idx" (MNIST family, .gz allowed) | "hdf5" (x, y datasets, read in rows)
  /// | "list" (ACT list files: `relative/path label` lines) | "imagefolder"
  /// (torchvision layout: one sub-folder per class)
  std::string format = "idx";
  /// idx: image/label files. hdf5: *_images is a file with datasets x and y;
  /// *_labels defaults to the same file. list: *_images is the list file.
  /// imagefolder: *_images is the split's root folder.
  std::string train_images, train_labels;
  std::string eval_images, eval_labels;  ///< eval_images empty: no evaluation
  /// list: folder the listed paths are relative to ("" = the list's folder).
  std::string root;
  std::vector<double> mean;     ///< per channel; empty: no normalisation
  std::vector<double> std_dev;  ///< YAML key `std`; same length as mean, > 0
  /// The range mean/std are written for: 1 (pixels x/255, ACT, torchvision)
  /// or 255 (raw 0..255 pixels). Float data are taken as already in it.
  double pixel_range = 1.0;
  bool shuffle = true;
  // Images (list, imagefolder).
  std::string transform;        ///< "act" | "torchvision"; "" for idx/hdf5
  int64_t img_size = 224;       ///< crop size (ACT Global.img_size)
  int64_t resize_size = 256;    ///< eval short side (ACT Global.resize_size)
  std::string interpolation;    ///< nearest|bilinear|bicubic|lanczos
  std::vector<double> scale = {0.08, 1.0};          ///< random crop area range
  std::vector<double> ratio = {3.0 / 4.0, 4.0 / 3.0};  ///< random crop aspect range
  bool random_flip = true;
  std::string channel_order = "rgb";  ///< "rgb" | "bgr"
  int64_t max_image_pixels = 89478485;  ///< decompression-bomb limit (PIL's)
  /// JPEG DCT-domain downscaling when the source region is >= 2x what the
  /// transform needs: "train" (training transform only; evaluation stays
  /// pixel-exact with PIL) | "all" | "off".
  std::string jpeg_dct_scaling = "train";
  bool skip_bad_images = false;
  int64_t decode_workers = 0;   ///< 0 = the cores compute threads leave free (>= 1)
  int64_t prefetch_batches = 2; ///< batches prepared ahead, >= 1
  bool operator==(const Data&) const = default;
};

/// Global: what to train and how big a batch is.
struct Global {
  std::string model;            ///< "zoo:NAME" built-in architecture, or ""
  std::string model_dir;        ///< folder of the model to compress, or ""
  std::string model_filename;   ///< "" lets the loader pick
  std::string params_filename;  ///< Paddle combined params; "" otherwise
  int64_t batch_size = 0;       ///< per rank; required, 1..kMaxBatchSize
  int64_t eval_batch_size = 0;  ///< per rank, 1..kMaxBatchSize; batch_size if absent
  int64_t seed = 1;             ///< >= 0
  std::string save_dir = "./output";
  /// Compute threads per rank, 0..4 x the online cores; 0 = automatic (the
  /// node's cores divided among its ranks). The core-count bound is checked
  /// by loadConfig only: a config stored in a checkpoint (parseConfigString)
  /// may come from a bigger machine (kMaxThreadsAnyMachine there).
  int64_t num_threads = 0;
  /// Model input fed with images (ACT's input_name); "" = the only input.
  std::string input_name;
  Data data;
  bool operator==(const Global&) const = default;
};

/// Checkpoint: periodic training-state snapshots.
struct Checkpoint {
  std::string dir;             ///< resolved to "<save_dir>/checkpoints" if absent
  /// 0..kMaxIterations; 0: only at the end and on a stop signal.
  int64_t every_iters = 500;
  int64_t keep_last = 3;       ///< 1..kMaxKeepLast (the newest are kept)
  std::string resume = "auto"; ///< "auto" | "never" | a checkpoint file path
  bool operator==(const Checkpoint&) const = default;
};

/// Distributed: communication backend.
struct Distributed {
  std::string backend = "auto";  ///< auto | mpi | nccl | local
  double bucket_mb = 4.0;        ///< gradient bucket size, > 0
  double timeout_s = 300.0;      ///< longest wait of any collective, > 0
  bool operator==(const Distributed&) const = default;
};

/// QuantAware (older spelling `Quantization`; act-reference §2.1, current
/// defaults). Op types are kept as spelled (Paddle or ONNX names); use
/// quantTargets() for the ONNX op kinds they select.
struct QuantAware {
  std::vector<std::string> quantize_op_types = {
      "conv2d", "depthwise_conv2d", "conv2d_transpose", "mul", "matmul", "matmul_v2"};
  int64_t weight_bits = 8;      ///< kMinQuantBits..kMaxQuantBits (2..16)
  int64_t activation_bits = 8;  ///< kMinQuantBits..kMaxQuantBits (2..16)
  std::vector<std::string> not_quant_pattern = {"skip_quant"};  ///< name-scope substrings
  bool use_pact = false;
  /// abs_max | range_abs_max | moving_average_abs_max
  std::string activation_quantize_type = "moving_average_abs_max";
  /// abs_max | channel_wise_abs_max (ACT also takes range_abs_max and
  /// moving_average_abs_max for weights: rejected, scales are recomputed
  /// from the weights every step)
  std::string weight_quantize_type = "channel_wise_abs_max";
  std::string dtype = "int8";   ///< only int8
  int64_t window_size = 10000;  ///< range_abs_max window, 1..kMaxWindowSize
  double moving_rate = 0.9;     ///< EMA decay, in (0, 1)
  bool for_tensorrt = false;
  bool onnx_format = true;      ///< accepted; export is always ONNX QDQ
  bool is_full_quantize = false;
  /// slimtrain's own key: weight bits of the ops whose quantized input can be
  /// negative (not behind a ReLU / Clip at >= 0, e.g. a residual stream or
  /// the image); 0 = weight_bits. 7 keeps their integer weights within
  /// +-63, which ONNX Runtime's U8S8 kernels multiply exactly on x86 without
  /// VNNI, so the export needs no slower U8U8 ops (export_detail.h).
  /// 2..16 when given.
  int64_t signed_input_weight_bits = 0;
  bool operator==(const QuantAware&) const = default;
};

/// ONNX op kinds whose weights/inputs get fake-quantized.
struct QuantTargets {
  bool conv = false;            ///< Conv that is not depthwise (Paddle conv2d)
  bool depthwise_conv = false;  ///< Conv with group == input channels
  bool conv_transpose = false;  ///< ConvTranspose
  bool gemm = false;            ///< Gemm (Paddle mul / matmul / matmul_v2)
  bool matmul = false;          ///< MatMul with a constant weight input
  bool matmul_act = false;      ///< MatMul of two activations (Paddle matmul / matmul_v2)
  bool add = false;             ///< Add of two activations (Paddle elementwise_add)
  bool pool = false;            ///< MaxPool / AveragePool / Global* (Paddle pool2d)
  bool operator==(const QuantTargets&) const = default;
};

/// Maps quantize_op_types to op kinds. Paddle names: conv2d -> conv,
/// depthwise_conv2d -> depthwise_conv, conv2d_transpose -> conv_transpose,
/// mul -> gemm + matmul, matmul/matmul_v2 -> gemm + matmul + matmul_act
/// (Paddle's mul always has a weight; its matmul ops also multiply two
/// activations). ONNX names: Conv -> conv + depthwise_conv, ConvTranspose,
/// Gemm, MatMul -> matmul + matmul_act; the activation-only types
/// elementwise_add / Add -> add and pool2d (any ONNX pooling op name) -> pool.
/// for_tensorrt replaces the list by ACT's TensorRT list (less leaky_relu)
/// and is_full_quantize selects every kind above (ACT's other
/// activation-only types are not modelled).
/// @return the selected kinds
QuantTargets quantTargets(const QuantAware& q);

/// One teacher/student tensor pair; `teacher` carries the "teacher_" prefix.
struct DistillPair {
  std::string teacher, student;
  /// Where each name was written ("file: line L, column C: Distillation.node[i]";
  /// empty for automatic pairs), for errors found once the model is loaded.
  /// Not part of the value: a config re-read from a checkpoint compares equal.
  std::string teacher_where = {}, student_where = {};
  bool operator==(const DistillPair& o) const {
    return teacher == o.teacher && student == o.student;
  }
};

/// One node group: one loss function and one weight for all its pairs.
struct DistillGroup {
  std::string loss = "l2";        ///< canonical name: "l2" | "soft_label"
  double alpha = 1.0;
  std::vector<DistillPair> pairs; ///< empty: automatic (final weighted layers)
  bool operator==(const DistillGroup&) const = default;
};

/// Distillation (act-reference §2.2; legacy keys distill_loss,
/// distill_node_pair, distill_lambda, merge_feed). Node lists are resolved at
/// parse time: a list whose first name starts with "teacher_" is read as
/// alternating [teacher, student, ...] pairs, otherwise as student names each
/// paired with "teacher_<name>" (ACT decides by looking the first name up in
/// the student; the names themselves are checked against the model later).
struct Distillation {
  std::vector<DistillGroup> groups = {DistillGroup{}};  ///< >= 1 group
  std::string teacher_model_dir;       ///< "" -> the model being compressed
  std::string teacher_model_filename;
  std::string teacher_params_filename;
  double temperature = 1.0;            ///< soft_label temperature, > 0
  std::string task_loss;               ///< "" (off, as ACT) | "cross_entropy"
  double task_loss_weight = 1.0;       ///< >= 0, used when task_loss is set
  /// @return true when no node was given (the trainer picks final nodes).
  bool autoNodes() const { return groups.size() == 1 && groups[0].pairs.empty(); }
  bool operator==(const Distillation&) const = default;
};

/// UnstructurePrune.gmp_config as written; a missing key is nullopt and gets
/// ACT's automatic value (act-reference §3.5) from resolveGmp(). Given
/// values are at most kMaxIterations (stable, tunning >= 0; pruning,
/// pruning_steps >= 1; resume >= -1).
struct GmpConfig {
  std::optional<int64_t> stable_iterations, pruning_iterations, tunning_iterations;
  std::optional<int64_t> resume_iteration, pruning_steps;
  std::optional<double> initial_ratio;
  bool operator==(const GmpConfig&) const = default;
};

/// UnstructurePrune (act-reference §2.3; legacy `pruned_ratio`).
struct UnstructurePrune {
  std::string prune_strategy;               ///< "" (fixed ratio every step) | "gmp"
  std::string prune_mode = "ratio";         ///< "ratio" | "threshold"
  double ratio = 0.55;                      ///< target sparsity, [0, 1)
  double threshold = 0.01;                  ///< threshold mode, >= 0
  std::optional<GmpConfig> gmp_config;      ///< nullopt: `gmp_config` absent (auto)
  std::string prune_params_type = "conv1x1_only";  ///< "conv1x1_only" | "" (null)
  bool local_sparsity = false;
  bool operator==(const UnstructurePrune&) const = default;
};

/// Fully resolved GMP schedule parameters.
struct GmpSchedule {
  int64_t stable_iterations = 0, pruning_iterations = 0, tunning_iterations = 0;
  int64_t resume_iteration = -1, pruning_steps = 1;
  double initial_ratio = 0.15;
  bool operator==(const GmpSchedule&) const = default;
};

/// Fills keys missing from gmp_config with ACT's automatic values for a run of
/// `total_iters` iterations: stable 0, pruning = tunning = max(floor(0.45·T),
/// 30), resume -1, steps 100 if 0.45·T > 1000 else 1, initial_ratio 0.15; then
/// checks pruning_iterations / pruning_steps > 10 and initial_ratio < ratio.
/// @param p the parsed section (prune_strategy should be "gmp")
/// @param total_iters total training iterations (epochs × iterations per epoch,
///        or train_iter), > 0
/// @return the schedule; throws ConfigError naming the violated rule
GmpSchedule resolveGmp(const UnstructurePrune& p, int64_t total_iters);

/// A learning-rate schedule (Paddle paddle.optimizer.lr classes); stepped once
/// per training iteration.
struct LrSchedule {
  /// "Constant" (a plain float) | "PiecewiseDecay" | "CosineAnnealingDecay" |
  /// "LinearWarmup" | "ExponentialDecay"
  std::string type = "Constant";
  double learning_rate = 0.02;        ///< Constant/Cosine/Exponential base LR; LinearWarmup float form
  std::vector<int64_t> boundaries;    ///< PiecewiseDecay, increasing, 0..kMaxIterations
  std::vector<double> values;         ///< PiecewiseDecay, boundaries.size() + 1
  int64_t T_max = 0;                  ///< CosineAnnealingDecay, 1..kMaxIterations
  double eta_min = 0.0;               ///< CosineAnnealingDecay
  int64_t warmup_steps = 0;           ///< LinearWarmup, 1..kMaxIterations
  double start_lr = 0.0, end_lr = 0.0;  ///< LinearWarmup
  double gamma = 0.0;                 ///< ExponentialDecay, in (0, 1]
  /// LinearWarmup whose learning_rate is itself a schedule: that schedule (one
  /// element), used after the warmup. Empty otherwise.
  std::vector<LrSchedule> after_warmup;
  bool operator==(const LrSchedule&) const = default;
};

/// Optimizer, resolved from either `optimizer_builder` or the legacy
/// `optimizer` + `optim_args` form (both give equal structs).
struct Optimizer {
  std::string type = "SGD";     ///< SGD | Momentum | Adam | AdamW
  double momentum = 0.9;        ///< Momentum
  bool use_nesterov = false;    ///< Momentum
  double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;  ///< Adam, AdamW
  /// Coupled L2 for SGD/Momentum/Adam, decoupled for AdamW (default 0.01 for
  /// AdamW, 0 otherwise). regularizer {type: L2Decay, coeff} sets it too.
  double weight_decay = 0.0;
  double grad_clip_norm = 0.0;  ///< ClipGradByGlobalNorm clip_norm; 0 = no clipping
  bool operator==(const Optimizer&) const = default;
};

/// TrainConfig (act-reference §2.4).
///
/// Run length: at least one of epochs / train_iter is required. Given both,
/// training stops at whichever comes first, i.e. after
/// min(epochs x iterations per epoch, train_iter) iterations: ACT loops over
/// `epochs` epochs and breaks out once `train_iter` total iterations are
/// done (act-reference §6.1 step 3), so this is ACT's behaviour. loadConfig
/// logs this rule when both are given.
struct TrainConfig {
  std::optional<int64_t> epochs;      ///< 1..kMaxEpochs
  std::optional<int64_t> train_iter;  ///< total iterations across epochs, 1..kMaxIterations
  int64_t eval_iter = 1000;           ///< evaluate every N total iterations, 1..kMaxIterations
  int64_t logging_iter = 10;          ///< 1..kMaxIterations
  LrSchedule learning_rate;
  Optimizer optimizer;
  std::optional<double> origin_metric, target_metric;
  /// What evaluation scores: auto (from the model's output and the labels:
  /// top1, miou or distill_loss), top1, miou, pixel_acc, distill_loss.
  std::string eval_metric = "auto";
  bool sparse_model = false;
  /// compress: a trainable per-channel batch norm after each hidden
  /// convolution whose BN the exporter folded (compress/renorm/renorm.h):
  /// "auto" (a CNN with no normalisation op: hasFoldedConvs), "true", "false".
  std::string renormalize_convs = "auto";
  bool operator==(const TrainConfig&) const = default;
};

/// The whole configuration. Absent compression sections are nullopt.
struct Config {
  Global global;
  Checkpoint checkpoint;
  Distributed distributed;
  std::optional<QuantAware> quant;
  std::optional<Distillation> distill;
  std::optional<UnstructurePrune> prune;
  TrainConfig train;
  bool operator==(const Config&) const = default;
};

/// Reads, parses and validates a YAML config file, after applying `--set`
/// overrides. Throws slim::ConfigError (exit code 2) on any problem: among
/// others a directory ("is a directory"), a second YAML document (`---`,
/// named by its line), an empty --set value (named by the --set option).
/// @param path the YAML file
/// @param overrides "Section.key.sub=value" strings; the value is parsed as a
///        YAML scalar or flow collection ("TrainConfig.epochs=2",
///        "Global.Data.mean=[0.5]"); an unknown key path is an error with a
///        suggestion. A legacy/new spelling of a key already in the file is
///        replaced (setting Distillation.alpha replaces distill_lambda).
/// @param train_optional a missing TrainConfig section is allowed (the eval
///        command reads Global only); train then holds a 1-epoch placeholder
/// @return the validated config, defaults filled in
Config loadConfig(const std::string& path, const std::vector<std::string>& overrides = {},
                  bool train_optional = false);

/// Same as loadConfig for YAML text already in memory (tests, checkpoints).
/// @param yaml_text the document
/// @param pretend_filename used as the file name in error messages
/// @param overrides as for loadConfig
Config parseConfigString(const std::string& yaml_text, const std::string& pretend_filename,
                         const std::vector<std::string>& overrides = {});

/// The full resolved config (all defaults filled, newest key spellings) as
/// YAML text; parseConfigString(resolvedYaml(c), ...) == c. Stored in
/// checkpoints.
std::string resolvedYaml(const Config& c);

/// Key paths whose values differ between `a` (e.g. the checkpoint's config) and
/// `b` (the current one) and that change the training trajectory, as
/// "key: old -> new" lines in key order. Keys that do not (kNonTrajectoryKeys)
/// are ignored. Empty: resuming `a`'s run under `b` is safe.
std::vector<std::string> trajectoryDiff(const Config& a, const Config& b);

/// Key paths (or "Section." prefixes) that trajectoryDiff ignores: output
/// locations, logging, evaluation (eval data, batch, interval, metrics: they
/// never change weights), checkpointing and Distributed.* (backend and bucket
/// size change only the summation order, as a different world size does).
/// epochs/train_iter count as trajectory keys (the automatic GMP schedule
/// depends on the run length).
extern const std::vector<std::string> kNonTrajectoryKeys;

}  // namespace slim::config
