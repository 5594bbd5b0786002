// The compress subcommand: passes + the shared training loop + outputs.
// Pass order follows ACT (act-reference §1): masks, teacher merge, loss,
// then fake quantization (teacher ops are never quantized).
#include "trainer/train/compress_command.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include "slim_config.h"
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>

#include "checkpoint/checkpoint_manager.h"

#include "comm/local/local_communicator.h"
#include "trainer/compress/distill/distill_loss.h"
#include "trainer/compress/distill/teacher_merge.h"
#include "trainer/compress/export/qdq_export.h"
#include "trainer/compress/prune/pruner.h"
#include "trainer/compress/quant/qat_pass.h"
#include "trainer/compress/renorm/renorm.h"
#include "trainer/core/log.h"
#include "trainer/models/load.h"
#include "trainer/models/onnx/onnx_export.h"
#include "trainer/train/compress_hooks.h"
#include "trainer/train/evaluate.h"
#include "trainer/train/ort_check.h"
#include "trainer/train/report_html.h"
#include "trainer/train/trainer.h"

namespace slim::train {
namespace {

graph::Graph loadTeacher(const config::Config& cfg, const graph::Graph& student) {
  const config::Distillation& d = *cfg.distill;
  if (d.teacher_model_dir.empty()) return student.clone();  // ACT: the original model
  graph::Graph t = models::loadModelFrom(d.teacher_model_dir, d.teacher_model_filename,
                                         d.teacher_params_filename);
  for (auto& v : t.inputs)
    if (!v.shape.empty()) v.shape[0] = -1;
  return t;
}

// Evaluates the exported graph with slimtrain's kernels on the eval set (all
// of it, on rank 0) and streams the same batches to ONNX Runtime.
struct ExportCheck {
  EvalResult slim;  ///< the exported model run by slimtrain
  EvalResult ort;   ///< ONNX Runtime's predictions scored the same way
  bool ran = false;  ///< ONNX Runtime answered for every sample
  /// Predictions compared (samples, or pixels of a segmentation output),
  /// those that differ, and the samples with any difference.
  int64_t samples = 0, predictions = 0, differing = 0, differing_samples = 0;
  std::string first_difference;  ///< where() of the first sample they disagree on
  std::string why;               ///< why ONNX Runtime did not run
  bool stopped = false;          ///< a stop signal cut the evaluation short
};

ExportCheck checkExport(const config::Config& cfg, const graph::Graph& out,
                        const std::string& out_path, const std::string& logits,
                        const data::Dataset& eval) {
  ExportCheck c;
  c.slim.top1 = c.ort.top1 = NAN;
  if (eval.size() == 0) {
    c.why = "no evaluation data";
    return c;
  }
  OrtRunner ort;
  bool have_ort = ort.start(out_path, cfg.global.save_dir + "/onnxruntime.log", &c.why);
  int64_t ort_correct = 0;
  graph::Graph run = out;
  graph::Executor ex(run);
  ex.releaseForwardValues(true);  // only the logits (an output) are read: one batch's live set
  comm::LocalCommunicator self;
  EvalSpec spec{run.inputs[0].name, "", logits, cfg.global.eval_batch_size,
                data::decodeWorkers(eval, cfg.global.data.decode_workers)};
  spec.metric = cfg.train.eval_metric;  // no teacher here: distill_loss stays NaN
  const Metric metric = metricFor(spec, eval);
  const bool masks = metric == Metric::kMiou || metric == Metric::kPixelAcc;
  ConfusionMatrix ort_cm;
  std::vector<int64_t> op;
  // Per-sample predictions (classification) or per-pixel ones (segmentation:
  // `per` of them per sample, (h, w) order), compared one by one.
  auto compare = [&](const data::Batch& b, const std::vector<int64_t>& pred) {
    if (!have_ort) return;
    if (!ort.predict(b.images, &op, &c.why)) {
      have_ort = false;
      return;
    }
    if (op.size() != pred.size()) {
      c.why = "ONNX Runtime answered " + std::to_string(op.size()) + " predictions for a batch "
              "where slimtrain has " + std::to_string(pred.size());
      have_ort = false;
      return;
    }
    const int64_t n = static_cast<int64_t>(b.indices.size());
    const int64_t per = static_cast<int64_t>(pred.size()) / n;
    const Tensor& out = ex.value(logits);
    const int64_t w = out.ndim() == 4 ? out.dim(3) : 1;  // pixels are (h, w) within a sample
    const int64_t* y = b.labels.data<int64_t>();
    for (int64_t i = 0; i < n; ++i) {
      bool differs = false;
      for (int64_t p = i * per; p < (i + 1) * per; ++p) {
        if (op[p] == pred[p]) continue;
        differs = true;
        if (c.differing++ == 0)
          c.first_difference =
              eval.source->where(b.indices[i]) +
              (per > 1 ? " pixel (" + std::to_string((p - i * per) / w) + ", " +
                             std::to_string((p - i * per) % w) + ")"
                       : std::string()) +
              ": slimtrain class " + std::to_string(pred[p]) + ", ONNX Runtime class " +
              std::to_string(op[p]);
      }
      c.differing_samples += differs;
      if (metric == Metric::kTop1) ort_correct += op[i] == y[i];
    }
    if (masks) {
      if (ort_cm.classes() == 0) ort_cm.resize(out.dim(1));
      // Labels were checked against the classes by the slimtrain pass.
      ort_cm.add(y, op.data(), static_cast<int64_t>(op.size()));
    }
    c.samples += n;
    c.predictions += static_cast<int64_t>(pred.size());
  };
  c.slim = evaluate(ex, spec, eval, self, compare);
  c.stopped = c.slim.stopped;
  c.ort.metric = metric;
  if (have_ort && ort.finish(&c.why) && c.samples == eval.size()) {
    c.ran = true;
    if (metric == Metric::kTop1) {
      c.ort.top1 = static_cast<double>(ort_correct) / static_cast<double>(c.samples);
      c.ort.correct = ort_correct;
      c.ort.total = c.samples;
    } else if (masks) {
      c.ort.miou = ort_cm.meanIou();
      c.ort.pixel_acc = ort_cm.pixelAccuracy();
      c.ort.correct = ort_cm.correct();
      c.ort.total = ort_cm.total();
      c.ort.confusion = ort_cm;
    }
  }
  return c;
}

}  // namespace

void buildCompressGraph(const config::Config& cfg, int64_t world, int64_t train_size,
                        CompressGraph& cg) {
  if (!cfg.distill)
    SLIM_THROW(ConfigError, "compress: the config has no Distillation section; ACT trains on the "
               "distillation loss from the original model (add `Distillation: {}` for the "
               "default nodes and l2 loss)");
  // 1. Student (trained) and teacher (frozen copy, or Distillation.teacher_model_dir).
  cg.original = loadConfiguredModel(cfg.global);
  graph::Graph& original = cg.original;
  for (auto& v : original.inputs)
    if (!v.shape.empty()) v.shape[0] = -1;
  if (original.inputs.size() != 1 || original.outputs.size() != 1)
    SLIM_THROW(ModelError, "compress: model must have one input and one output (has ",
               original.inputs.size(), " and ", original.outputs.size(), ")");
  checkInputName(cfg.global, original);
  cg.teacher = loadTeacher(cfg, original);
  cg.g = original;  // shallow: trained weights are visible through `original`
  graph::Graph& g = cg.g;
  cg.image = g.inputs[0].name;
  cg.logits = g.outputs[0].name;

  // 1b. Convolutions whose batch norm the exporter folded get a trainable
  // one back, starting as the identity (compress/renorm/renorm.h).
  const std::string& rn = cfg.train.renormalize_convs;
  if ((cfg.prune || cfg.quant || cfg.train.sparse_model) &&
      (rn == "true" || (rn == "auto" && compress::hasFoldedConvs(g))))
    cg.renormalized = compress::renormalizeConvs(g, cg.logits);

  // 2. Masks (iterations per epoch decide the automatic GMP schedule).
  const int64_t per_epoch = train_size / (cfg.global.batch_size * world);
  cg.total = totalIterations(cfg.train, per_epoch);
  if (cfg.prune)
    cg.pruner = std::make_unique<compress::Pruner>(g, *cfg.prune, cg.total);
  else if (cfg.train.sparse_model)
    cg.pruner = std::make_unique<compress::Pruner>(compress::Pruner::sparseModel(g));

  // 3. Teacher merge, 4. distillation objective, 5. fake quantization.
  cg.tinfo = compress::mergeTeacher(g, cg.teacher);
  std::set<std::string> before;
  for (const auto& n : g.nodes) before.insert(n.name);
  cg.dl = compress::buildDistillLoss(g, *cfg.distill, cg.logits, "label");
  compress::QatOptions qopts;
  for (const auto& n : g.nodes)
    if (!before.count(n.name)) qopts.objective_nodes.insert(n.name);
  if (cfg.quant)
    cg.qat = std::make_unique<compress::QatInfo>(compress::insertQat(g, *cfg.quant, qopts));
}

graph::Graph deployableGraph(CompressGraph& cg, bool fp32, bool int8_weights) {
  if (cg.pruner) cg.pruner->applyToWeights();
  compress::QdqOptions o;
  o.uint8_weights = !int8_weights;
  return cg.qat && !fp32 ? compress::buildQdqGraph(cg.g, *cg.qat, {cg.logits}, o)
                         : compress::exportFp32Student(cg.g, {cg.logits});
}

int runCompress(const config::Config& cfg, comm::Communicator& comm, bool force_resume) {
  if (!cfg.quant && !cfg.prune && !cfg.train.sparse_model)
    log::warn0("compress: no Quantization/QuantAware or UnstructurePrune section: running "
               "plain distillation");
  data::Dataset train = loadData(cfg.global, false);
  data::Dataset eval = loadData(cfg.global, true);
  const int64_t world = comm.size();
  CompressGraph cg;
  buildCompressGraph(cfg, world, train.size(), cg);
  graph::Graph& original = cg.original;
  checkInputData(train, original);
  checkInputData(eval, original);
  checkLabels(train, modelClasses(original), original.name);
  checkLabels(eval, modelClasses(original), original.name);
  graph::Graph& teacher = cg.teacher;
  graph::Graph& g = cg.g;
  const std::string& image = cg.image;
  const std::string& logits = cg.logits;
  const int64_t total = cg.total;
  std::unique_ptr<compress::Pruner>& pruner = cg.pruner;
  compress::TeacherInfo& tinfo = cg.tinfo;
  compress::DistillLoss& dl = cg.dl;
  std::unique_ptr<compress::QatInfo>& qat = cg.qat;

  if (comm.rank() == 0) {
    log::info("compress: ", original.name, ", ", pruner ? pruner->candidates().size() : 0,
              " pruned parameters, ", qat ? qat->nodes.size() : 0, " quantized ops, ",
              dl.terms.size(), " distillation pairs, ", total, " iterations");
    if (cg.renormalized > 0)
      log::info("renormalize: ", cg.renormalized, " convolutions get a trainable batch norm "
                "(the model has none: folded by its exporter; TrainConfig.renormalize_convs)");
    if (qat) log::debug(compress::describeQat(*qat));  // one line per op: --verbose
    std::string pairs;
    for (const auto& p : pairStrings(dl)) pairs += (pairs.empty() ? "" : ", ") + p;
    log::info("distill: ", pairs);
  }

  if (dl.needs_labels && train.source && !train.source->hasLabels())
    SLIM_THROW(ConfigError, "Distillation.task_loss needs labels, but ", train.describe(),
               " has none (remove task_loss to distil from the teacher alone)");
  GraphIo io{image, dl.needs_labels ? dl.label_input : "", logits, dl.objective};
  Trainer trainer(cfg, g, io, comm);
  trainer.setForceResume(force_resume);
  // ACT exports the best evaluation; with pruning the best may come from
  // before the final sparsity, so a pruned run exports its final state.
  trainer.setKeepBest(!pruner);
  // metrics.jsonl keys: "distill/<loss>" per loss type (its weighted share of
  // the objective), "distill/<student tensor>" per pair, "task" when on.
  std::vector<std::pair<std::string, std::string>> terms;
  for (const auto& [loss, tensor] : dl.by_loss)
    terms.emplace_back(loss == "task" ? "task" : "distill/" + loss, tensor);
  for (const auto& t : dl.terms)
    terms.emplace_back("distill/" + t.pair.student + (dl.groups.size() > 1 ? ":" + t.loss : ""),
                       t.tensor);
  trainer.setLossTerms(terms);
  const std::string teacher_logits =
      tinfo.outputs.empty() ? "teacher_" + logits : tinfo.outputs[0];
  trainer.addEvalTarget("teacher", teacher_logits);
  std::unique_ptr<PruneHooks> prune_hooks;
  std::unique_ptr<PactHooks> pact_hooks;
  if (pruner) {
    prune_hooks = std::make_unique<PruneHooks>(*pruner, comm);
    trainer.addHooks(prune_hooks.get());
  }
  if (qat && !qat->pact_alphas.empty()) {
    pact_hooks = std::make_unique<PactHooks>(qat->pact_alphas);
    trainer.addHooks(pact_hooks.get());
  }

  TrainResult res = trainer.run(train, eval);
  if (res.stopped_on_signal) return kExitCheckpointed;

  // Outputs: the best evaluation's weights (quantization only) or the final ones.
  trainer.restoreBest();
  if (pruner) pruner->applyToWeights();
  auto r = trainer.evaluateAll(eval);
  if (r.count("student") && r["student"].stopped) {
    log::info0("stop signal during the final evaluation: the last checkpoint holds the "
               "finished training; a restarted job evaluates and exports it");
    return kExitCheckpointed;
  }
  int64_t bad_images = train.stats->bad_samples + eval.stats->bad_samples;
  comm::CollectiveOptions bo;
  bo.tag = "bad image count";
  comm.allreduce(&bad_images, 1, DType::kI64, comm::ReduceOp::kSum, bo);
  trainer.freeBuffers();  // the exported model gets an executor of its own below
  if (comm.rank() != 0) return kExitOk;
  const std::string dir = cfg.global.save_dir;
  std::filesystem::create_directories(dir);
  // The deployable model: INT8 QDQ when quantized, else the float student
  // with its pruned zeros; then the parity gate against ONNX Runtime.
  const std::string out_path = dir + "/model.onnx";
  graph::Graph out = deployableGraph(cg, false);
  try {
    models::exportOnnx(out, out_path);
  } catch (const ModelError&) {
    throw;
  } catch (const Error& e) {  // could not write: the training is not lost
    const std::filesystem::path ck =
        checkpoint::CheckpointManager(cfg.checkpoint.dir, 1).pathFor(res.iterations);
    const std::string kept = std::filesystem::exists(ck) ? ck.string() : cfg.checkpoint.dir;
    SLIM_THROW(Error, e.what(), ". The training finished and is kept in ", kept,
               ": `slimtrain export ", kept, " --out FILE` writes the model from it, or rerun "
               "the job (it resumes there)");
  }
  // Scores by name ("student", "teacher"); NaN ones when nothing was evaluated.
  auto score = [&](const char* who) {
    EvalResult e;
    e.top1 = NAN;
    if (r.count(who)) e = r[who];
    return e;
  };
  const EvalResult st = score("student");
  // Without evaluation data: the configured metric's keys (top1 for auto).
  Metric metric = st.metric;
  if (!r.count("student") && !parseMetricName(cfg.train.eval_metric, &metric))
    metric = Metric::kTop1;
  const double student = st.value();
  // The exported model run by slimtrain's own kernels (QuantizeLinear /
  // DequantizeLinear with ONNX's rounding): what the deployed file computes.
  // ONNX Runtime runs the same file on exactly the same batches, and the two
  // are compared sample by sample.
  const ExportCheck check = checkExport(cfg, out, out_path, logits, eval);
  if (check.stopped) {
    log::info("stop signal during the ONNX Runtime check: ", out_path, " is written; a "
              "restarted job repeats the check and writes report.json");
    return kExitCheckpointed;
  }
  const double exported = check.slim.value(), ort = check.ort.value();
  const std::string& why = check.why;
  const int64_t fp32_bytes = compress::initializerBytes(teacher);  // the FP32 model as given
  const int64_t out_bytes = compress::initializerBytes(out);

  JsonObject rep = commandJson("compress");
  rep.add("model", original.name);
  // The metric names the keys: teacher_top1 / student_top1 for classifiers
  // (as always), teacher_miou, teacher_pixel_acc, ... for segmentation,
  // student_distill_loss for unlabelled data.
  rep.add("metric", metricName(metric));
  EvalResult teacher_score = score("teacher"), export_score = check.slim, ort_score = check.ort;
  for (EvalResult* e : {&teacher_score, &export_score, &ort_score}) e->metric = metric;
  EvalResult student_score = st;
  student_score.metric = metric;
  addEvalFields(rep, "teacher_", teacher_score);
  addEvalFields(rep, "student_", student_score);
  rep.add("best_iter", res.best_iter).add("iterations", res.iterations);
  rep.add("images_per_s", res.images_per_s).add("world_size", static_cast<int64_t>(world));
  rep.add("early_stopped", res.early_stopped).add("final_loss", res.final_loss);
  if (pruner) {
    JsonObject per;
    for (const auto& [name, sp] : pruner->paramSparsity()) per.add(name, sp);
    JsonObject sp;
    sp.add("overall", pruner->sparsity()).add("ratio", pruner->ratio()).addRaw("per_parameter", per.str());
    rep.addRaw("sparsity", sp.str());
  }
  if (qat) {
    JsonObject q;
    q.add("count", static_cast<int64_t>(qat->nodes.size())).add("names", qat->nodeNames());
    q.add("weight_bits", static_cast<int64_t>(qat->weight_bits));
    q.add("activation_bits", static_cast<int64_t>(qat->activation_bits));
    rep.addRaw("quantized_ops", q.str());
  }
  rep.add("distill_pairs", pairStrings(dl));
  rep.add("renormalized_convs", static_cast<int64_t>(cg.renormalized));
  rep.add("output", out_path).add("format", qat ? "int8 qdq onnx" : "fp32 onnx");
  addEvalFields(rep, "export_", export_score);
  addEvalFields(rep, "onnxruntime_", ort_score);
  rep.add("onnxruntime_differing_predictions", check.differing);
  if (metric == Metric::kMiou || metric == Metric::kPixelAcc)
    rep.add("onnxruntime_differing_samples", check.differing_samples)
        .add("onnxruntime_compared_pixels", check.predictions);
  if (!check.ran) rep.add("onnxruntime_check", "not run: " + why);
  if (!check.first_difference.empty())
    rep.add("onnxruntime_first_difference", check.first_difference);
  rep.add("data_wait_share", res.step_seconds > 0 ? res.data_wait_seconds / res.step_seconds : 0.0);
  rep.add("bad_images_skipped", bad_images);
  rep.add("teacher_initializer_bytes", fp32_bytes);
  rep.add("export_initializer_bytes", out_bytes);
  rep.add("size_ratio", out_bytes > 0 ? static_cast<double>(fp32_bytes) / out_bytes : NAN);
  if (!check.ran) log::warn("ONNX Runtime check skipped: ", why);
  else if (check.differing > 0)
    log::warn("ONNX Runtime and slimtrain running ", out_path, " disagree on ", check.differing,
              " of ", check.samples, " predictions; first: ", check.first_difference);
  std::ofstream(dir + "/report.json") << rep.str() << "\n";
  ReportInputs page;
  page.save_dir = dir;
  page.title = original.name;
  page.report_json = rep.str();
  if (pruner)
    for (const auto& [name, sp] : pruner->paramSparsity())
      page.layer_sparsity.push_back({layerName(original, name), sp});
  if (qat)
    for (const auto& aq : qat->activations) {
      const std::string layer = layerName(original, aq.tensor);
      page.act_scales.push_back({layer, g.initializers.at(aq.scale).f32()[0]});
      if (!aq.pact_alpha.empty())
        page.pact_alphas.push_back({layer, g.initializers.at(aq.pact_alpha).f32()[0]});
    }
  log::info("report: ", writeReportHtml(page));
  std::printf("%s\n", rep.str().c_str());
  std::fflush(stdout);
  // The deployed accuracy is ONNX Runtime's. The export computes training's
  // inference arithmetic (BN unfolded, Q/DQ where training quantizes,
  // qdq_export.h); what can remain are float-rounding flips at quantizer
  // boundaries and, for convs that carry a bias, its int32 rounding. A gap
  // is reported, never turned into a failure of the finished job.
  if (!std::isnan(ort) && std::fabs(ort - student) > 0.001 + 1e-9)
    log::warn("ONNX Runtime ", metricLabel(metric), " of ", out_path, " is ", ort,
              ", slimtrain's fake-quant "
              "evaluation gave ", student, " (", 100 * std::fabs(ort - student), " points; "
              "slimtrain running the same file: ", exported, "); the deployed accuracy is "
              "ONNX Runtime's");
  return kExitOk;
}

int runExport(const std::string& from, const std::string& out_path, bool fp32,
              bool int8_weights, ExportSummary* summary) {
  namespace fs = std::filesystem;
  SLIM_ENFORCE(!out_path.empty(), "export: --out model.onnx is required");
  // A checkpoint file, a checkpoint folder, or a save_dir holding checkpoints/.
  fs::path file;
  std::optional<checkpoint::TrainingState> st;
  if (fs::is_regular_file(from)) {
    file = from;
    st = checkpoint::CheckpointManager::load(file);
  } else if (fs::is_directory(from)) {
    const fs::path dir = fs::is_directory(fs::path(from) / "checkpoints")
                             ? fs::path(from) / "checkpoints" : fs::path(from);
    st = checkpoint::CheckpointManager(dir.string(), 0).loadLatest(&file);
    if (!st)
      SLIM_THROW(ConfigError, "export: no valid checkpoint in ", dir.string());
  } else {
    SLIM_THROW(ConfigError, "export: ", from, " is neither a checkpoint file nor a folder");
  }
  const config::Config cfg = config::parseConfigString(st->config_yaml, file.string() + ":/config_yaml");
  graph::Graph out;
  std::string what;
  if (cfg.distill) {  // a compress checkpoint: rebuild its graph, load the state
    const data::Dataset train = loadData(cfg.global, false);
    CompressGraph cg;
    buildCompressGraph(cfg, st->world_size, train.size(), cg);
    restoreModelState(*st, cg.g, file.string());
    if (cg.pruner) {
      PruneHooks::restore(*cg.pruner, *st);
    } else {  // quantization only: compress exports the best evaluation's weights
      BestState best(true);
      best.load(*st, cg.g, file.string());
      best.restoreInto(cg.g);
      if (best.iter() >= 0)
        log::info("export: the weights of the best evaluation (iteration ", best.iter(),
                  "), as compress exports them");
    }
    out = deployableGraph(cg, fp32, int8_weights);
    what = cg.qat && !fp32 ? "int8 qdq" : "fp32";
  } else {            // a train checkpoint: the FP32 model
    out = loadConfiguredModel(cfg.global);
    restoreModelState(*st, out, file.string());
    what = "fp32";
  }
  models::exportOnnx(out, out_path);
  log::info("export: wrote ", out_path, " (", what, " onnx) from ", file.string(), " (iteration ",
            st->step, ")");
  if (summary != nullptr)
    *summary = {file.string(), st->step, what + " onnx",
                static_cast<int64_t>(fs::file_size(out_path))};
  return kExitOk;
}

}  // namespace slim::train
