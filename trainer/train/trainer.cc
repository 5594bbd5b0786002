// The loop. Every rank executes the same sequence of collectives in the same
// order (allreduces of gradients, BN statistics, eval counts, logging means),
// so no rank can wait on a collective the others never start.
#include "trainer/train/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>

#include "comm/grad_reducer.h"
#include "trainer/core/log.h"
#include "trainer/data/sampler.h"
#include "trainer/optim/grad_clip.h"
#include "trainer/train/progress.h"
#include "trainer/train/state_sync.h"

namespace slim::train {

Trainer::Trainer(const config::Config& cfg, graph::Graph& graph, GraphIo io,
                 comm::Communicator& comm)
    : cfg_(cfg), graph_(graph), io_(std::move(io)), comm_(comm) {
  executor_ = std::make_unique<graph::Executor>(graph_);
}

Trainer::~Trainer() = default;

void Trainer::addEvalTarget(const std::string& label, const std::string& logits) {
  eval_targets_.emplace_back(label, logits);
}

std::map<std::string, EvalResult> Trainer::evaluateAll(const data::Dataset& eval) {
  std::map<std::string, EvalResult> out;
  if (eval.size() == 0) return out;
  EvalSpec spec{io_.image, io_.label, io_.logits, cfg_.global.eval_batch_size};
  out["top1"] = evaluate(*executor_, spec, eval, comm_);
  for (const auto& [label, logits] : eval_targets_) {
    spec.logits = logits;
    out[label + "_top1"] = evaluate(*executor_, spec, eval, comm_);
  }
  return out;
}

TrainResult Trainer::run(const data::Dataset& train, const data::Dataset& eval) {
  const config::TrainConfig& tc = cfg_.train;
  const int world = comm_.size();
  const int64_t global_batch = cfg_.global.batch_size * world;
  SLIM_ENFORCE(train.size() >= global_batch, "training set has ", train.size(),
               " samples, fewer than one global batch of ", global_batch);
  data::ShardedSampler sampler(train.size(), global_batch, world, comm_.rank(),
                               static_cast<uint64_t>(cfg_.global.seed), cfg_.global.data.shuffle);
  const int64_t total = totalIterations(tc, sampler.batchesPerEpoch());
  SLIM_ENFORCE_GT(total, 0, "no training iterations configured");

  auto optimizer = optim::makeOptimizer(toOptimizerSpec(tc.optimizer));
  auto lr_schedule = optim::makeLrSchedule(toLrSpec(tc.learning_rate));
  comm::CollectiveOptions red_opts;
  red_opts.tag = "gradient allreduce";
  comm::GradReducer reducer(
      comm_, static_cast<size_t>(cfg_.distributed.bucket_mb * 1024 * 1024), red_opts);
  CommStateSync state_sync(comm_);
  Rng rng(Rng::mix(static_cast<uint64_t>(cfg_.global.seed), 0x7472616eULL + comm_.rank()));
  ops::RunContext ctx;
  ctx.training = true;
  ctx.sync = world > 1 ? &state_sync : nullptr;
  ctx.rng = &rng;

  // Parameters in a fixed (sorted) order for the optimizer and clipping.
  std::vector<optim::ParamRef> params;
  std::vector<Tensor*> grads;
  for (const auto& name : graph_.trainable) {
    bool owned = false;
    for (auto* h : hooks_) owned = owned || h->ownsParameter(name);
    if (owned) continue;
    params.push_back({name, &graph_.initializers.at(name), &executor_->grad(name)});
  }

  const std::string& save_dir = cfg_.global.save_dir;
  const bool root = comm_.rank() == 0;
  if (root) std::filesystem::create_directories(save_dir);
  MetricsWriter metrics(root ? save_dir + "/metrics.jsonl" : "", false);
  Progress progress(total, "train", root, tc.logging_iter);

  TrainResult res;
  Tensor images, labels;
  std::vector<int64_t> idx;
  Tensor seed = Tensor::scalar(1.0f);
  auto t_start = std::chrono::steady_clock::now();
  auto t_log = t_start;
  int64_t images_since_log = 0;
  double last_top1 = NAN;

  for (int64_t it = 0; it < total; ++it) {
    const bool last = it + 1 == total;
    // 1. This rank's shard of the global batch.
    const data::SamplerPosition pos = sampler.position();
    sampler.next(idx);
    data::fillBatch(train, idx, images, labels);
    for (auto* h : hooks_) h->beforeForward(it, *executor_);

    // 2. Forward, backward; gradients averaged over ranks as they become ready.
    executor_->forward({{io_.image, images}, {io_.label, labels}}, ctx);
    executor_->backward({{io_.loss, seed}}, ctx, [&](const std::string& name, Tensor& g) {
      if (world > 1) reducer.add(name, g.f32(), static_cast<size_t>(g.numel()));
    });
    if (world > 1) reducer.finalize();
    for (auto* h : hooks_) h->afterBackward(it, *executor_);

    // 3. Update.
    for (auto& p : params) p.grad = &executor_->grad(p.name);
    if (tc.optimizer.grad_clip_norm > 0) {
      grads.clear();
      for (auto& p : params) grads.push_back(const_cast<Tensor*>(p.grad));
      optim::clipGradByGlobalNorm(grads, static_cast<float>(tc.optimizer.grad_clip_norm));
    }
    const float lr = lr_schedule->lr(it);
    optimizer->step(params, lr);
    for (auto* h : hooks_) h->afterStep(it, *executor_);
    images_since_log += global_batch;

    // 4. Log.
    if ((it + 1) % tc.logging_iter == 0 || last) {
      double vals[8] = {executor_->value(io_.loss).f32()[0]};
      size_t nv = 1;
      for (const auto& t : loss_terms_)
        if (nv < 8) vals[nv++] = executor_->value(t).f32()[0];
      comm::CollectiveOptions o;
      o.tag = "loss logging";
      float fv[8];
      for (size_t i = 0; i < nv; ++i) fv[i] = static_cast<float>(vals[i]);
      comm_.allreduce(fv, nv, DType::kF32, comm::ReduceOp::kSum, o);
      auto now = std::chrono::steady_clock::now();
      double dt = std::chrono::duration<double>(now - t_log).count();
      double ips = dt > 0 ? images_since_log / dt : 0;
      t_log = now;
      images_since_log = 0;
      res.final_loss = fv[0] / world;
      JsonObject line;
      line.add("iter", it + 1).add("epoch", pos.epoch).add("loss", res.final_loss);
      for (size_t i = 1; i < nv; ++i) line.add(loss_terms_[i - 1], fv[i] / world);
      line.add("lr", static_cast<double>(lr)).add("images_per_s", ips);
      for (auto* h : hooks_) h->addMetrics(it, line);
      metrics.write(line);
      char status[96];
      std::snprintf(status, sizeof status, "loss %.4f lr %.4g %.0f img/s%s", res.final_loss,
                    static_cast<double>(lr), ips,
                    std::isnan(last_top1) ? "" : (" top1 " + std::to_string(last_top1).substr(0, 6)).c_str());
      progress.update(it + 1, status);
    }

    // 5. Evaluate.
    if (eval.size() > 0 && ((it + 1) % tc.eval_iter == 0 || last)) {
      auto r = evaluateAll(eval);
      res.eval = r["top1"];
      last_top1 = res.eval.top1;
      JsonObject line;
      line.add("iter", it + 1);
      for (const auto& [k, v] : r) line.add("eval_" + k, v.top1);
      metrics.write(line);
      if (res.best_iter < 0 || res.eval.top1 > res.best_eval.top1) {
        res.best_eval = res.eval;
        res.best_iter = it + 1;
      }
      std::string msg = "iter " + std::to_string(it + 1) + ": eval";
      for (const auto& [k, v] : r) msg += " " + k + " " + std::to_string(v.top1);
      log::info0(msg);
    }
    // Every rank holds the same allreduced accuracy, so all stop together.
    if (eval.size() > 0 && tc.target_metric && res.eval.total > 0 &&
        res.eval.top1 > *tc.target_metric && ((it + 1) % tc.eval_iter == 0)) {
      log::info0("target_metric ", *tc.target_metric, " reached at iteration ", it + 1,
                 "; stopping early");
      res.early_stopped = true;
      res.iterations = it + 1;
      break;
    }
    res.iterations = it + 1;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  res.images_per_s = secs > 0 ? res.iterations * global_batch / secs : 0;
  progress.finish("done: " + std::to_string(res.iterations) + " iterations, " +
                  std::to_string(static_cast<int64_t>(res.images_per_s)) + " img/s");
  return res;
}

}  // namespace slim::train
