// The loop. Every rank executes the same sequence of collectives in the same
// order (allreduces of gradients, BN statistics, eval counts, logging means),
// so no rank can wait on a collective the others never start.
#include "trainer/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <set>

#include "checkpoint/checkpoint_manager.h"
#include "checkpoint/resume.h"
#include "checkpoint/save_dir_lock.h"
#include "trainer/core/log.h"
#include "trainer/core/signals.h"
#include "trainer/data/loader.h"
#include "trainer/data/sampler.h"
#include "trainer/optim/grad_clip.h"
#include "trainer/rank_reduction/comm_state_sync.h"
#include "trainer/rank_reduction/gradient_router.h"
#include "trainer/train/loop_state.h"
#include "trainer/train/progress.h"
#include "trainer/train/resume.h"

namespace slim::train {
namespace {

std::vector<TrainHooks*>& processHooks() {
  static std::vector<TrainHooks*> hooks;
  return hooks;
}

}  // namespace

void addProcessHooks(TrainHooks* hooks) { processHooks().push_back(hooks); }

Trainer::Trainer(const config::Config& cfg, graph::Graph& graph, GraphIo io,
                 comm::Communicator& comm)
    : cfg_(cfg), graph_(graph), io_(std::move(io)), comm_(comm), hooks_(processHooks()),
      process_hooks_(hooks_.size()) {
  executor_ = std::make_unique<graph::Executor>(graph_);
  // A frozen teacher's activations are dead once its forward moved on, and
  // so are the student's that backward needs only the shapes of.
  executor_->releaseForwardValues(true);
  for (const std::string* name : {&io_.logits, &io_.loss}) executor_->keepValue(*name);
}

void Trainer::setLossTerms(std::vector<std::pair<std::string, std::string>> terms) {
  loss_terms_ = std::move(terms);
  for (const auto& term : loss_terms_) executor_->keepValue(term.second);
}

Trainer::~Trainer() = default;

void Trainer::addEvalTarget(const std::string& label, const std::string& logits) {
  eval_targets_.emplace_back(label, logits);
  executor_->keepValue(logits);
}

std::map<std::string, EvalResult> Trainer::evaluateAll(const data::Dataset& eval) {
  SLIM_ENFORCE(executor_ != nullptr, "Trainer::evaluateAll after freeBuffers()");
  std::map<std::string, EvalResult> out;
  if (eval.size() == 0) return out;
  EvalSpec spec{io_.image, io_.label, io_.logits, cfg_.global.eval_batch_size,
                data::decodeWorkers(eval, cfg_.global.data.decode_workers)};
  spec.metric = cfg_.train.eval_metric;
  std::vector<std::string> logits = {io_.logits};
  for (const auto& target : eval_targets_) {
    logits.push_back(target.second);
    if (target.first == "teacher") spec.reference = target.second;
  }
  const std::vector<EvalResult> r = evaluateMany(*executor_, spec, logits, eval, comm_);
  out["student"] = r[0];
  for (size_t k = 0; k < eval_targets_.size(); ++k) out[eval_targets_[k].first] = r[k + 1];
  return out;
}

void Trainer::restoreBest() { best_.restoreInto(graph_); }

TrainResult Trainer::run(const data::Dataset& train, const data::Dataset& eval) {
  const config::TrainConfig& tc = cfg_.train;
  const int world = comm_.size();
  const int64_t global_batch = cfg_.global.batch_size * world;
  if (train.size() < global_batch)
    SLIM_THROW(DataError, train.describe(), ": ", train.size(), " training samples, fewer than one "
               "global batch of ", global_batch, " (Global.batch_size ", cfg_.global.batch_size,
               " x ", world, " rank(s))");
  data::ShardedSampler sampler(train.size(), global_batch, world, comm_.rank(),
                               static_cast<uint64_t>(cfg_.global.seed), cfg_.global.data.shuffle);
  const int64_t total = totalIterations(tc, sampler.batchesPerEpoch());
  SLIM_ENFORCE_GT(total, 0, "no training iterations configured");

  auto optimizer = optim::makeOptimizer(toOptimizerSpec(tc.optimizer));
  auto lr_schedule = optim::makeLrSchedule(toLrSpec(tc.learning_rate));
  comm::CollectiveOptions red_opts;
  red_opts.tag = "gradient allreduce";
  // Each gradient crosses ranks exactly (reduced by the ops) or through the
  // bucketed float allreduce: trainer/rank_reduction/rank_reduction.h.
  rank_reduction::GradientRouter router(
      comm_, static_cast<size_t>(cfg_.distributed.bucket_mb * 1024 * 1024), red_opts,
      [this](const std::string& name) { return executor_->gradReducedOverRanks(name); });
  rank_reduction::CommStateSync state_sync(comm_);
  Rng rng;
  ops::RunContext ctx;
  ctx.training = true;
  ctx.sync = world > 1 ? &state_sync : nullptr;
  ctx.rng = &rng;
  // The training step's teacher forward, student forward and backward may
  // round differently from evaluation (Winograd convs): evaluate.cc, the
  // export check and `eval` build their own context without it.
  ctx.fast_conv = true;
  LoopState ls{&sampler, optimizer.get()};

  // Parameters in a fixed (sorted) order for the optimizer and clipping.
  std::vector<optim::ParamRef> params;
  std::vector<Tensor*> grads;
  for (const auto& name : graph_.trainable) {
    bool owned = false;
    for (auto* h : hooks_) owned = owned || h->ownsParameter(name);
    if (owned) continue;
    params.push_back({name, &graph_.initializers.at(name), &executor_->grad(name)});
  }

  // Resume: every rank reads the same checkpoint (replicated state).
  TrainResult res;
  const bool root = comm_.rank() == 0;
  // One job per checkpoint directory (rank 0 holds the lock for the whole
  // run); every rank learns the outcome, so all exit 2 instead of waiting.
  std::optional<checkpoint::SaveDirLock> dir_lock;
  int64_t locked = 1;
  std::string lock_error;
  if (root) {
    try {
      dir_lock.emplace(cfg_.checkpoint.dir);
    } catch (const ConfigError& e) {
      locked = 0;
      lock_error = e.what();
    }
  }
  comm::CollectiveOptions lo;
  lo.tag = "checkpoint directory lock";
  comm_.broadcast(&locked, 1, DType::kI64, 0, lo);
  if (!locked) {
    if (root) throw ConfigError(lock_error);
    SLIM_THROW(ConfigError, "checkpoint directory ", cfg_.checkpoint.dir,
               " is in use by another job (rank 0 names it)");
  }
  checkpoint::CheckpointManager ckpt(cfg_.checkpoint.dir, static_cast<int>(cfg_.checkpoint.keep_last));
  int64_t start = 0;
  std::string res_from;  // the checkpoint resumed from
  if (cfg_.checkpoint.resume != "never") {
    std::filesystem::path from;
    std::optional<checkpoint::TrainingState> st =
        checkpoint::loadResumePoint(ckpt, cfg_.checkpoint.resume, &from);
    if (st) {
      checkResumeCompatible(cfg_, world, *st, from.string(), force_resume_);
      restoreState(*st, graph_, ls, hooks_, from.string());
      best_.load(*st, graph_, from.string());
      res_from = from.string();
      start = st->step;
      res.resumed_from = start;
      log::info0("resumed from ", from.string(), " at iteration ", start, " (epoch ", st->epoch,
                 ", written by ", st->world_size, " rank(s))");
    }
  }

  const std::string& save_dir = cfg_.global.save_dir;
  if (root) std::filesystem::create_directories(save_dir);
  MetricsWriter metrics(root ? save_dir + "/metrics.jsonl" : "", start > 0);
  Progress progress(total, "train", root, tc.logging_iter);
  // Divergence: a non-finite loss is agreed on at the next iteration's stop
  // allreduce (no extra collective); a checkpoint is only written after all
  // ranks agree that the loss and every parameter are finite, so no
  // checkpoint or export ever holds the diverged state.
  bool loss_bad = false;  // this rank's last loss was NaN/Inf
  std::string last_good = start > 0 ? res_from : std::string("none (no checkpoint was written)");
  int64_t last_good_iter = start;
  auto diverged = [&](int64_t iter, const std::string& what) {
    throw DivergenceError(
        "training diverged: " + what + " at iteration " + std::to_string(iter) +
        ". Nothing was exported; the last checkpoint before it is " + last_good +
        (last_good_iter > 0 ? " (iteration " + std::to_string(last_good_iter) + ")" : "") +
        ". Resume it with a lower TrainConfig.learning_rate (add --force-resume, the "
        "learning rate changes the trajectory)");
  };
  auto saveCheckpoint = [&](int64_t iter) {
    int32_t bad = loss_bad ? 1 : 0;
    for (const auto& name : graph_.trainable)
      if (!bad && !allFinite(graph_.initializers.at(name))) bad = 2;
    comm::CollectiveOptions fo;
    fo.tag = "finite-state agreement";
    comm_.allreduce(&bad, 1, DType::kI32, comm::ReduceOp::kMax, fo);
    if (bad) diverged(iter, bad == 1 ? "the loss is not finite" : "a parameter is not finite");
    checkpoint::TrainingState st = captureState(cfg_, graph_, ls, iter, world, hooks_);
    best_.save(st);
    for (auto* h : hooks_) h->beforeCheckpoint(iter, ckpt.tempPathFor(iter));
    if (root) {
      const auto t0 = std::chrono::steady_clock::now();
      auto path = ckpt.save(st);
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
      checkpoint_ms_ += ms;
      log::info("checkpoint ", path.string(), " (iteration ", iter, ", ", static_cast<int>(ms + 0.5),
                " ms)");
      last_good = path.string();
    } else {
      last_good = "the one rank 0 names";
    }
    last_good_iter = iter;
    comm::CollectiveOptions o;
    o.tag = "checkpoint barrier";
    comm_.barrier(o);  // nobody races ahead of a checkpoint that may be its resume point
  };

  // Decode workers fill batches ahead of the loop, in the sampler's order,
  // from the position the run starts (or resumes) at.
  const config::Data& dc = cfg_.global.data;
  const int workers = data::decodeWorkers(train, dc.decode_workers);
  data::BatchLoader loader(
      train,
      [s = sampler](std::vector<int64_t>& indices, int64_t& epoch) mutable {
        epoch = s.position().epoch;
        s.next(indices);
        return true;
      },
      {workers, static_cast<int>(dc.prefetch_batches)});
  log::info0("data: ", train.describe(), ", ", workers, " decode worker(s)");
  data::Batch batch;
  std::vector<int64_t> idx;
  std::map<std::string, Tensor> feeds;
  Tensor seed = Tensor::scalar(1.0f);
  auto t_start = std::chrono::steady_clock::now();
  auto t_log = t_start;
  int64_t images_since_log = 0;
  double last_score = NAN;  // the last evaluation's metric value
  double eval_s = 0;  // loop time spent evaluating
  res.iterations = start;

  // Evaluates after `done` iterations and keeps the best; false when a stop
  // signal cut the pass short (the partial counts are dropped; the loop's
  // next stop agreement checkpoints and leaves).
  auto evaluateAt = [&](int64_t done) {
    const auto t_eval = std::chrono::steady_clock::now();
    std::map<std::string, EvalResult> r = evaluateAll(eval);
    eval_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t_eval).count();
    if (r["student"].stopped) return false;
    res.eval = r["student"];
    last_score = res.eval.value();
    JsonObject line;
    line.add("iter", done);
    for (const auto& [k, v] : r) addEvalFields(line, k == "student" ? "eval_" : "eval_" + k + "_", v);
    metrics.write(line);
    best_.offer(res.eval, done, graph_);
    std::string msg = "iter " + std::to_string(done) + ": eval";
    for (const auto& [k, v] : r)
      msg += " " + k + " " + metricName(v.metric) + " " + std::to_string(v.value());
    log::info0(msg);
    return true;
  };
  auto targetReached = [&] {
    return tc.target_metric && isBetter(res.eval.metric, res.eval.value(), *tc.target_metric);
  };
  // An evaluation due at the iteration resumed from that a stop signal cut
  // short runs now, as it did in a run that went through.
  if (start > 0 && eval.size() > 0 && best_.lastEvalIter() < start &&
      (start % tc.eval_iter == 0 || start == total) && evaluateAt(start) && targetReached()) {
    log::info0("target_metric ", *tc.target_metric, " reached at iteration ", start,
               "; stopping early");
    res.early_stopped = true;
  }

  for (int64_t it = start; it < total && !res.early_stopped; ++it) {
    const bool last = it + 1 == total;
    // 0. Stop requested on any rank (SIGUSR1/SIGTERM)? All agree, checkpoint,
    //    leave. The same allreduce tells whether the last loss was finite.
    int32_t flags[2] = {stopRequested() ? 1 : 0, loss_bad ? 1 : 0};
    comm::CollectiveOptions so;
    so.tag = "stop-signal agreement";
    comm_.allreduce(flags, 2, DType::kI32, comm::ReduceOp::kMax, so);
    if (flags[1]) diverged(it, "the loss is not finite");
    if (flags[0]) {
      log::info0("stop signal received: checkpointing at iteration ", it, " and exiting");
      saveCheckpoint(it);
      res.stopped_on_signal = true;
      break;
    }
    // 1. This rank's shard of the global batch.
    const data::SamplerPosition pos = sampler.position();
    sampler.next(idx);
    loader.next(batch);
    SLIM_ENFORCE(batch.indices == idx, "data loader out of step with the sampler at iteration ",
                 it);
    const Tensor& images = batch.images;
    const Tensor& labels = batch.labels;
    rng.reseed(Rng::mix(static_cast<uint64_t>(cfg_.global.seed),
                        static_cast<uint64_t>(it) * 4096 + static_cast<uint64_t>(comm_.rank())));
    for (auto* h : hooks_) h->beforeForward(it, *executor_);

    // 2. Forward, backward; gradients averaged over ranks as they become ready.
    feeds[io_.image] = images;
    if (!io_.label.empty()) feeds[io_.label] = labels;
    executor_->forward(feeds, ctx);
    loss_bad = !std::isfinite(executor_->value(io_.loss).f32()[0]);
    for (auto* h : hooks_) h->afterForward(it, *executor_);
    executor_->backward({{io_.loss, seed}}, ctx, [&](const std::string& name, Tensor& g) {
      router.add(name, g.f32(), static_cast<size_t>(g.numel()));
    });
    router.finalize();
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
    res.iterations = it + 1;

    // 4. Log.
    if ((it + 1) % tc.logging_iter == 0 || last) {
      std::vector<float> fv = {executor_->value(io_.loss).f32()[0]};
      for (const auto& term : loss_terms_) fv.push_back(executor_->value(term.second).f32()[0]);
      const size_t nv = fv.size();
      comm::CollectiveOptions o;
      o.tag = "loss logging";
      comm_.allreduce(fv.data(), nv, DType::kF32, comm::ReduceOp::kSum, o);
      auto now = std::chrono::steady_clock::now();
      double dt = std::chrono::duration<double>(now - t_log).count();
      double ips = dt > 0 ? images_since_log / dt : 0;
      t_log = now;
      images_since_log = 0;
      res.final_loss = fv[0] / world;
      JsonObject line;
      line.add("iter", it + 1).add("epoch", pos.epoch).add("loss", res.final_loss);
      for (size_t i = 1; i < nv; ++i)
        line.add(loss_terms_[i - 1].first, static_cast<double>(fv[i] / world));
      line.add("lr", static_cast<double>(lr)).add("images_per_s", ips);
      for (auto* h : hooks_) h->addMetrics(it, line);
      metrics.write(line);
      char status[128];
      std::snprintf(status, sizeof status, "loss %.4f lr %.4g %.0f img/s", res.final_loss,
                    static_cast<double>(lr), ips);
      std::string st = status;
      if (!std::isnan(last_score))
        st += std::string(" ") + metricName(res.eval.metric) + " " +
              std::to_string(last_score).substr(0, 6);
      progress.update(it + 1, st);
    }

    // 5. Evaluate; keep the best.
    const bool evaluated =
        eval.size() > 0 && ((it + 1) % tc.eval_iter == 0 || last) && evaluateAt(it + 1);

    // 6. Checkpoint.
    const int64_t every = cfg_.checkpoint.every_iters;
    if ((every > 0 && (it + 1) % every == 0) || last) saveCheckpoint(it + 1);

    // Every rank holds the same allreduced score, so all stop together
    // (distill_loss: below the target).
    if (evaluated && targetReached()) {
      log::info0("target_metric ", *tc.target_metric, " reached at iteration ", it + 1,
                 "; stopping early");
      res.early_stopped = true;
      if (!last && !(every > 0 && (it + 1) % every == 0)) saveCheckpoint(it + 1);
      break;
    }
  }
  for (auto* h : hooks_)
    h->afterTraining(res.iterations, [&] {
      checkpoint::TrainingState st = captureState(cfg_, graph_, ls, res.iterations, world, hooks_);
      best_.save(st);
      return st;
    });
  if (eval.size() > 0 && res.eval.total == 0 && !res.stopped_on_signal) {
    // Resumed at the very end (nothing left to train): still report accuracy.
    res.eval = evaluateAll(eval)["student"];
    res.stopped_on_signal = res.eval.stopped;
    if (!res.stopped_on_signal && best_.iter() < 0) best_.offer(res.eval, res.iterations, graph_);
  }
  res.best_eval = best_.eval();
  res.best_iter = best_.iter();
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
  res.images_per_s = secs > 0 ? (res.iterations - start) * global_batch / secs : 0;
  res.seconds = secs;
  res.checkpoint_seconds = checkpoint_ms_ / 1000;
  res.data_wait_seconds = loader.waitSeconds();
  // Training steps only: evaluations and checkpoint writes are not steps.
  res.step_seconds = std::max(0.0, secs - eval_s - res.checkpoint_seconds);
  std::string ck;
  if (res.step_seconds > 0) {
    char buf[64];
    std::snprintf(buf, sizeof buf, ", data wait %.1f%% of step time",
                  100 * res.data_wait_seconds / res.step_seconds);
    ck = buf;
  }
  if (checkpoint_ms_ > 0) {
    char buf[96];
    std::snprintf(buf, sizeof buf, ", checkpoints %.2f s (%.2f%% of %.2f s)",
                  res.checkpoint_seconds, 100 * res.checkpoint_seconds / secs, secs);
    ck += buf;
  }
  const std::string how = res.stopped_on_signal ? "stopped on a signal: "
                          : res.early_stopped   ? "target_metric reached: "
                                                : "done: ";
  char ips[32];
  std::snprintf(ips, sizeof ips, "%.1f", res.images_per_s);
  progress.finish(how + std::to_string(res.iterations) + " iterations, " + ips + " img/s" + ck,
                  res.iterations);
  return res;
}

}  // namespace slim::train
