// train / eval subcommands.
#include "trainer/train/commands.h"

#include <cstdio>
#include <filesystem>

#include "trainer/core/log.h"
#include "trainer/models/load.h"
#include "trainer/models/onnx/onnx_export.h"
#include "trainer/train/metrics.h"
#include "trainer/train/trainer.h"

namespace slim::train {

int runTrain(const config::Config& cfg, comm::Communicator& comm, bool force_resume) {
  data::Dataset train = loadData(cfg.global, false);
  data::Dataset eval = loadData(cfg.global, true);
  graph::Graph model = loadConfiguredModel(cfg.global);
  checkInputName(cfg.global, model);
  if (train.source && !train.source->hasLabels())
    SLIM_THROW(ConfigError, "train: ", train.describe(), " has no labels to train on (`compress` "
               "distils from the model itself without them)");
  checkInputData(train, model);
  checkInputData(eval, model);
  checkLabels(train, modelClasses(model), model.name);
  checkLabels(eval, modelClasses(model), model.name);
  graph::Graph tg = model;  // shallow: shares parameter storage with `model`
  GraphIo io = addClassificationLoss(tg);
  log::info0("training ", model.name, " (", model.trainable.size(), " parameter tensors) on ",
             train.size(), " samples, ", comm.size(), " rank(s) x batch ",
             cfg.global.batch_size);
  Trainer trainer(cfg, tg, io, comm);
  trainer.setForceResume(force_resume);
  TrainResult res = trainer.run(train, eval);
  if (res.stopped_on_signal) return kExitCheckpointed;
  if (comm.rank() == 0) {
    const std::string out = cfg.global.save_dir + "/model.onnx";
    models::exportOnnx(model, out);
    log::info("wrote ", out);
    JsonObject o = commandJson("train");
    o.add("metric", metricName(res.eval.metric));
    addEvalFields(o, "", res.eval);
    o.add("iterations", res.iterations).add("images_per_s", res.images_per_s);
    o.add("loss", res.final_loss).add("model", out);
    std::printf("%s\n", o.str().c_str());
    std::fflush(stdout);
  }
  return kExitOk;
}

int runEval(const config::Config& cfg, const std::string& model_path,
            comm::Communicator& comm) {
  data::Dataset eval = loadData(cfg.global, true);
  if (eval.size() == 0)
    SLIM_THROW(ConfigError, "Global.Data.eval_images is not set: nothing to evaluate");
  std::string path = model_path;
  const std::string saved = cfg.global.save_dir + "/model.onnx";
  if (path.empty() && std::filesystem::exists(saved)) path = saved;
  graph::Graph model = path.empty() ? loadConfiguredModel(cfg.global)
                                    : models::loadModel(path, "", cfg.global.seed);
  if (!path.empty()) models::checkModelRuns(model, path);
  checkInputName(cfg.global, model);
  checkInputData(eval, model);
  checkLabels(eval, modelClasses(model), model.name);
  graph::Graph g = model;
  GraphIo io = addClassificationLoss(g);
  graph::Executor ex(g);
  ex.releaseForwardValues(true);  // only the logits (an output) are read: one batch's live set
  EvalSpec spec{io.image, io.label, io.logits, cfg.global.eval_batch_size,
                data::decodeWorkers(eval, cfg.global.data.decode_workers)};
  spec.metric = cfg.train.eval_metric;  // "auto" when the config has no TrainConfig
  if (metricFor(spec, eval) == Metric::kDistillLoss)
    SLIM_THROW(ConfigError, "eval: ", eval.describe(), " has no labels; its only score is the "
               "distillation loss against a teacher, which `compress` reports (distill_loss)");
  EvalResult r = evaluate(ex, spec, eval, comm);
  if (r.stopped) {
    log::info0("stop signal: evaluation stopped after ", r.total, " samples");
    return kExitCheckpointed;
  }
  int64_t bad = eval.stats->bad_samples;
  comm::CollectiveOptions o;
  o.tag = "bad image count";
  comm.allreduce(&bad, 1, DType::kI64, comm::ReduceOp::kSum, o);
  if (comm.rank() == 0) {
    // Classification keeps its keys (top1, correct, total samples);
    // segmentation adds miou/pixel_acc and counts pixels.
    JsonObject o = commandJson("eval");
    addEvalFields(o, "", r);
    o.add("correct", r.correct).add("total", r.total);
    if (r.metric != Metric::kTop1) o.add("metric", metricName(r.metric));
    o.add("bad_images_skipped", bad).add("model", path.empty() ? model.name : path);
    std::printf("%s\n", o.str().c_str());
    std::fflush(stdout);
  }
  return kExitOk;
}

}  // namespace slim::train
