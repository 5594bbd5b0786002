// Parsers for slimtrain's own sections: Global (+ Data), Checkpoint,
// Distributed (SEMANTICS.md §1).
#include <algorithm>
#include <cctype>
#include <limits>
#include <thread>

#include "trainer/config/schema.h"

namespace slim::config::detail {
namespace {

// Upper bound of Global.num_threads: 4 x the online cores (at least 4);
// without the machine check (a checkpoint's config) kMaxThreadsAnyMachine.
int64_t maxThreads() {
  return 4 * std::max<int64_t>(1, static_cast<int64_t>(std::thread::hardware_concurrency()));
}

bool isImageFormat(const std::string& f) {
  return f == "list" || f == "imagefolder" || f == "seglist";
}

// Image keys (list, imagefolder): transform, sizes, augmentation, decoding.
void parseImageKeys(const Node& n, Data& d) {
  const bool image = isImageFormat(d.format);
  for (const char* k : {"root", "transform", "img_size", "resize_size", "interpolation", "scale",
                        "ratio", "random_flip", "channel_order", "max_image_pixels",
                        "jpeg_dct_scaling", "skip_bad_images"})
    if (n.has(k) && !image)
      n[k].fail("applies to image data only (format list, imagefolder or seglist), found format '" +
                d.format + "'");
  if (!image) return;
  if (n.has("root")) d.root = n["root"].str();
  if (d.format == "imagefolder" && n.has("root"))
    n["root"].fail("applies to formats list and seglist only (ImageFolder paths are the folders)");
  d.transform = n.has("transform") ? n["transform"].choice({"act", "torchvision"})
                                   : (d.format == "list" ? "act" : "torchvision");
  if (n.has("img_size")) d.img_size = n["img_size"].i64In(1, 8192);
  if (n.has("resize_size")) d.resize_size = n["resize_size"].i64In(1, 16384);
  if (d.resize_size < d.img_size)
    n[n.has("resize_size") ? "resize_size" : "img_size"].fail(
        "resize_size (" + std::to_string(d.resize_size) + ") must be >= img_size (" +
        std::to_string(d.img_size) + "): evaluation center-crops img_size from it");
  d.interpolation = n.has("interpolation")
                        ? n["interpolation"].choice({"nearest", "bilinear", "bicubic", "lanczos"})
                        : (d.transform == "act" ? "lanczos" : "bilinear");
  auto range = [&](const char* key, std::vector<double>& v, double hi) {
    if (!n.has(key)) return;
    v = n[key].f64List(false);
    if (v.size() != 2 || !(v[0] > 0) || !(v[0] <= v[1]) || !(v[1] <= hi))
      n[key].fail("expected [low, high] with 0 < low <= high" +
                  (hi < 1e300 ? " <= " + std::to_string(static_cast<int>(hi)) : std::string()));
  };
  range("scale", d.scale, 1.0);
  range("ratio", d.ratio, 1e308);
  if (n.has("random_flip")) d.random_flip = n["random_flip"].boolean();
  if (n.has("channel_order")) d.channel_order = n["channel_order"].choice({"rgb", "bgr"});
  if (n.has("max_image_pixels"))
    d.max_image_pixels = n["max_image_pixels"].i64In(1, int64_t{1} << 40);
  if (n.has("jpeg_dct_scaling"))
    d.jpeg_dct_scaling = n["jpeg_dct_scaling"].choice({"train", "all", "off"});
  if (n.has("skip_bad_images")) d.skip_bad_images = n["skip_bad_images"].boolean();
}

Data parseData(const Node& n) {
  Data d;
  if (!n.present())
    n.fail("required section is missing (give Global.data_dir with train_list.txt and "
           "val_list.txt, or a Global.Data section: format, train_images, ...)");
  n.checkKeys(*knownKeysAt("Global.Data"));
  if (n.has("format"))
    d.format = n["format"].choice({"idx", "hdf5", "list", "imagefolder", "seglist"});
  const bool image = isImageFormat(d.format);
  if (!n.has("train_images")) n["train_images"].fail("required key is missing");
  d.train_images = n["train_images"].str();
  if (n.has("eval_images")) d.eval_images = n["eval_images"].str();
  for (const char* k : {"train_labels", "eval_labels"})
    if (n.has(k) && image)
      n[k].fail("format " + d.format + " takes its labels from " +
                (d.format == "imagefolder" ? "the class folders" : "the list lines") +
                "; remove it");
  if (n.has("train_labels")) d.train_labels = n["train_labels"].str();
  else if (d.format == "hdf5") d.train_labels = d.train_images;
  else if (d.format == "idx") n["train_labels"].fail("required key is missing (format idx)");
  if (n.has("eval_labels")) d.eval_labels = n["eval_labels"].str();
  if (d.format == "hdf5" && d.eval_labels.empty()) d.eval_labels = d.eval_images;
  if (d.format == "idx" && d.eval_images.empty() != d.eval_labels.empty())
    n[d.eval_images.empty() ? "eval_images" : "eval_labels"].fail(
        "required when the other eval_* key is given");
  if (n.has("pixel_range")) {
    d.pixel_range = n["pixel_range"].f64();
    if (d.pixel_range != 1 && d.pixel_range != 255)
      n["pixel_range"].fail("expected 1 (mean/std for pixels / 255) or 255 (raw pixels), found " +
                            n["pixel_range"].str());
  }
  if (n.has("mean")) d.mean = n["mean"].f64List(true);
  if (n.has("std")) d.std_dev = n["std"].f64List(true);
  if (image && !n.has("mean") && !n.has("std")) {  // ImageNet's, as ACT and torchvision
    d.mean = {0.485 * d.pixel_range, 0.456 * d.pixel_range, 0.406 * d.pixel_range};
    d.std_dev = {0.229 * d.pixel_range, 0.224 * d.pixel_range, 0.225 * d.pixel_range};
  }
  if (d.mean.size() != d.std_dev.size())
    n[n.has("std") ? "std" : "mean"].fail(
        "mean and std must have the same length, found " + std::to_string(d.mean.size()) +
        " and " + std::to_string(d.std_dev.size()));
  for (double s : d.std_dev)
    if (!(s > 0)) n["std"].fail("expected positive values, found " + std::to_string(s));
  if (n.has("shuffle")) d.shuffle = n["shuffle"].boolean();
  parseImageKeys(n, d);
  if (n.has("decode_workers")) d.decode_workers = n["decode_workers"].i64In(0, 256);
  if (n.has("prefetch_batches")) d.prefetch_batches = n["prefetch_batches"].i64In(1, 64);
  return d;
}

// ACT's form: Global.data_dir with train_list.txt / val_list.txt, ACT's
// reader (act-reference §10) and ImageNet normalisation.
Data actDataDir(const Node& g) {
  Data d;
  d.format = "list";
  d.root = g["data_dir"].str();
  if (d.root.empty()) g["data_dir"].fail("expected a folder holding train_list.txt");
  d.train_images = d.root + "/train_list.txt";
  d.eval_images = d.root + "/val_list.txt";
  d.transform = "act";
  d.interpolation = "lanczos";
  d.mean = {0.485, 0.456, 0.406};
  d.std_dev = {0.229, 0.224, 0.225};
  if (g.has("img_size")) d.img_size = g["img_size"].i64In(1, 8192);
  if (g.has("resize_size")) d.resize_size = g["resize_size"].i64In(1, 16384);
  if (d.resize_size < d.img_size)
    g["resize_size"].fail("resize_size (" + std::to_string(d.resize_size) +
                          ") must be >= img_size (" + std::to_string(d.img_size) + ")");
  return d;
}

}  // namespace

Global parseGlobal(const Node& n) {
  Global g;
  if (!n.present()) n.fail("required section is missing (model or model_dir, batch_size, data_dir or Data)");
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
  g.batch_size = n["batch_size"].i64In(1, kMaxBatchSize);
  g.eval_batch_size =
      n.has("eval_batch_size") ? n["eval_batch_size"].i64In(1, kMaxBatchSize) : g.batch_size;
  if (n.has("seed")) g.seed = n["seed"].i64In(0, std::numeric_limits<int64_t>::max());
  if (n.has("save_dir")) g.save_dir = n["save_dir"].str();
  if (n.has("num_threads")) {
    if (n.source() && n.source()->user_file) {
      const int64_t hi = maxThreads();
      g.num_threads = n["num_threads"].i64In(
          0, hi, " (0 = automatic; at most 4 x the " + std::to_string(hi / 4) + " online cores)");
    } else {
      g.num_threads = n["num_threads"].i64In(0, kMaxThreadsAnyMachine, " (0 = automatic)");
    }
  }
  if (n.has("input_name")) g.input_name = n["input_name"].str();
  if (n.has("data_dir")) {
    if (n.has("Data"))
      n["data_dir"].fail("give either data_dir (ACT's list files) or a Data section, not both");
    g.data = actDataDir(n);
  } else {
    for (const char* k : {"img_size", "resize_size"})
      if (n.has(k))
        n[k].fail("applies with Global.data_dir; with a Data section use Global.Data." +
                  std::string(k));
    g.data = parseData(n["Data"]);
  }
  return g;
}

Checkpoint parseCheckpoint(const Node& n, const Global& g) {
  Checkpoint c;
  n.checkKeys(*knownKeysAt("Checkpoint"));
  c.dir = n.has("dir") ? n["dir"].str() : g.save_dir + "/checkpoints";
  if (n.has("every_iters"))
    c.every_iters = n["every_iters"].i64In(0, kMaxIterations,
                                           " (0 = only at the end and on a stop signal)");
  if (n.has("keep_last")) c.keep_last = n["keep_last"].i64In(1, kMaxKeepLast);
  if (n.has("resume")) {
    c.resume = n["resume"].str();
    if (c.resume.empty()) n["resume"].fail("expected auto, never or a checkpoint path");
    std::string lower = c.resume;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if ((lower == "auto" || lower == "never" || lower == "none" || lower == "false") &&
        c.resume != "auto" && c.resume != "never")
      n["resume"].fail("expected auto or never (lower case) or a checkpoint path, found '" +
                       c.resume + "'");
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
