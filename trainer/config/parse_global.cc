// Parsers for slimtrain's own sections: Global (+ Data), Checkpoint,
// Distributed (SEMANTICS.md §1).
#include "trainer/config/schema.h"

namespace slim::config::detail {
namespace {

int64_t positive(const Node& n) {
  const int64_t v = n.i64();
  if (v <= 0) n.fail("expected a positive integer, found " + std::to_string(v));
  return v;
}

Data parseData(const Node& n) {
  Data d;
  if (!n.present()) n.fail("required section is missing (train_images, train_labels, ...)");
  n.checkKeys(*knownKeysAt("Global.Data"));
  if (n.has("format")) d.format = n["format"].choice({"idx", "hdf5"});
  if (!n.has("train_images")) n["train_images"].fail("required key is missing");
  d.train_images = n["train_images"].str();
  if (n.has("train_labels")) d.train_labels = n["train_labels"].str();
  else if (d.format == "hdf5") d.train_labels = d.train_images;
  else n["train_labels"].fail("required key is missing (format idx)");
  if (n.has("eval_images")) d.eval_images = n["eval_images"].str();
  if (n.has("eval_labels")) d.eval_labels = n["eval_labels"].str();
  if (d.format == "hdf5" && d.eval_labels.empty()) d.eval_labels = d.eval_images;
  if (d.eval_images.empty() != d.eval_labels.empty())
    n[d.eval_images.empty() ? "eval_images" : "eval_labels"].fail(
        "required when the other eval_* key is given");
  if (n.has("mean")) d.mean = n["mean"].f64List(true);
  if (n.has("std")) d.std_dev = n["std"].f64List(true);
  if (d.mean.size() != d.std_dev.size())
    n[n.has("std") ? "std" : "mean"].fail(
        "mean and std must have the same length, found " + std::to_string(d.mean.size()) +
        " and " + std::to_string(d.std_dev.size()));
  for (double s : d.std_dev)
    if (!(s > 0)) n["std"].fail("expected positive values, found " + std::to_string(s));
  if (n.has("shuffle")) d.shuffle = n["shuffle"].boolean();
  return d;
}

}  // namespace

Global parseGlobal(const Node& n) {
  Global g;
  if (!n.present()) n.fail("required section is missing (model, batch_size, Data)");
  n.checkKeys(*knownKeysAt("Global"));
  if (n.has("model")) {
    g.model = n["model"].str();
    if (g.model.rfind("zoo:", 0) != 0 || g.model.size() == 4)
      n["model"].fail("expected 'zoo:NAME' (a built-in architecture), found '" + g.model + "'");
  }
  if (n.has("model_dir")) g.model_dir = n["model_dir"].str();
  if (g.model.empty() == g.model_dir.empty())
    n[g.model.empty() ? "model" : "model_dir"].fail(
        g.model.empty() ? "one of 'model' (zoo:NAME) or 'model_dir' is required"
                        : "give either 'model' or 'model_dir', not both");
  if (n.has("model_filename")) g.model_filename = n["model_filename"].str();
  if (n.has("params_filename")) {
    g.params_filename = n["params_filename"].str();
    if (g.params_filename == "None") g.params_filename.clear();  // ACT's spelling of None
  }
  if (!g.model.empty() && (!g.model_filename.empty() || !g.params_filename.empty()))
    n["model"].fail("model_filename/params_filename only apply with model_dir");
  if (!n.has("batch_size")) n["batch_size"].fail("required key is missing");
  g.batch_size = positive(n["batch_size"]);
  g.eval_batch_size = n.has("eval_batch_size") ? positive(n["eval_batch_size"]) : g.batch_size;
  if (n.has("seed")) {
    g.seed = n["seed"].i64();
    if (g.seed < 0) n["seed"].fail("expected a non-negative integer, found " + std::to_string(g.seed));
  }
  if (n.has("save_dir")) g.save_dir = n["save_dir"].str();
  if (n.has("num_threads")) {
    g.num_threads = n["num_threads"].i64();
    if (g.num_threads < 0) n["num_threads"].fail("expected >= 0 (0 = automatic)");
  }
  g.data = parseData(n["Data"]);
  return g;
}

Checkpoint parseCheckpoint(const Node& n, const Global& g) {
  Checkpoint c;
  n.checkKeys(*knownKeysAt("Checkpoint"));
  c.dir = n.has("dir") ? n["dir"].str() : g.save_dir + "/checkpoints";
  if (n.has("every_iters")) {
    c.every_iters = n["every_iters"].i64();
    if (c.every_iters < 0) n["every_iters"].fail("expected >= 0 (0 = only at the end), found " +
                                                 std::to_string(c.every_iters));
  }
  if (n.has("keep_last")) c.keep_last = positive(n["keep_last"]);
  if (n.has("resume")) {
    c.resume = n["resume"].str();
    if (c.resume.empty()) n["resume"].fail("expected auto, never or a checkpoint path");
  }
  return c;
}

Distributed parseDistributed(const Node& n) {
  Distributed d;
  n.checkKeys(*knownKeysAt("Distributed"));
  if (n.has("backend")) d.backend = n["backend"].choice({"auto", "mpi", "nccl", "local"});
  if (n.has("bucket_mb")) {
    d.bucket_mb = n["bucket_mb"].f64();
    if (!(d.bucket_mb > 0)) n["bucket_mb"].fail("expected a positive number, found " + n["bucket_mb"].str());
  }
  if (n.has("timeout_s")) {
    d.timeout_s = n["timeout_s"].f64();
    if (!(d.timeout_s > 0)) n["timeout_s"].fail("expected a positive number, found " + n["timeout_s"].str());
  }
  return d;
}

}  // namespace slim::config::detail
