// List-file and ImageFolder indexes over image files.
#include "trainer/data/image_list.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

namespace slim::data {
namespace {

namespace fs = std::filesystem;

// Relative paths packed into one buffer ('\0'-terminated, uint32 offsets
// while the buffer is under 4 GiB) with int32 labels and, for list files
// with blank lines, the line of each sample.
class ImageIndexSource : public Source {
 public:
  ImageIndexSource(std::string what, std::string root, ImageTransform t)
      : what_(std::move(what)), root_(std::move(root)), t_(t) {}

  void add(std::string_view rel, int64_t label, int64_t line) {
    SLIM_ENFORCE(blob_.size() + rel.size() + 1 < (uint64_t{1} << 32),
                 what_, ": the listed paths exceed 4 GiB");
    offsets_.push_back(static_cast<uint32_t>(blob_.size()));
    blob_.append(rel);
    blob_.push_back('\0');
    labels_.push_back(static_cast<int32_t>(label));
    if (line != static_cast<int64_t>(labels_.size()) && lines_.empty())
      for (size_t k = 0; k + 1 < labels_.size(); ++k) lines_.push_back(static_cast<uint32_t>(k + 1));
    if (!lines_.empty()) lines_.push_back(static_cast<uint32_t>(line));
    if (label > max_.value) max_ = {label, where(size() - 1)};
  }
  // Capacity for about `lines` samples of `bytes` path bytes in all: a long
  // list then fills its buffers without doubling (and their peak memory).
  void reserve(size_t lines, size_t bytes) {
    blob_.reserve(bytes);
    offsets_.reserve(lines);
    labels_.reserve(lines);
  }
  void shrink() {
    // Reallocating would briefly need both copies; keep a modest slack.
    if (blob_.capacity() > blob_.size() + blob_.size() / 4) blob_.shrink_to_fit();
    offsets_.shrink_to_fit();
    labels_.shrink_to_fit();
    lines_.shrink_to_fit();
  }

  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  Shape sampleShape() const override { return {3, t_.img_size, t_.img_size}; }
  DType pixelType() const override { return DType::kU8; }
  int64_t label(int64_t i) const override { return labels_[static_cast<size_t>(i)]; }
  LabelMax maxLabel() const override { return max_; }
  bool expensive() const override { return true; }

  void read(int64_t i, uint64_t seed, void* dst) const override {
    try {
      loadImageSample(path(i), t_, seed, static_cast<uint8_t*>(dst));
    } catch (const BadSampleError& e) {
      // The decoder's message starts with the path; where() names it too.
      std::string msg = e.what();
      const std::string p = path(i) + ": ";
      if (msg.rfind(p, 0) == 0) msg.erase(0, p.size());
      throw BadSampleError(where(i) + ": " + msg);
    }
  }

  std::string where(int64_t i) const override {
    const auto k = static_cast<size_t>(i);
    const int64_t line = lines_.empty() ? i + 1 : lines_[k];
    return what_ + (is_list_ ? ":" + std::to_string(line) + " (" + path(i) + ")" : " " + path(i));
  }
  std::string describe() const override {
    return what_ + " (" + std::to_string(size()) + " images, " + std::to_string(max_.value + 1) +
           " classes)";
  }

  std::string path(int64_t i) const {
    const char* rel = blob_.data() + offsets_[static_cast<size_t>(i)];
    if (rel[0] == '/' || root_.empty()) return rel;
    return root_ + "/" + rel;
  }

  bool is_list_ = true;

 private:
  std::string what_, root_;
  ImageTransform t_;
  std::string blob_;
  std::vector<uint32_t> offsets_;
  std::vector<int32_t> labels_;
  std::vector<uint32_t> lines_;
  LabelMax max_;
};

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Splits a line into whitespace-separated tokens (at most 3 are kept).
std::vector<std::string_view> tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size() && out.size() < 3) {
    while (i < s.size() && isSpace(s[i])) ++i;
    if (i == s.size()) break;
    size_t j = i;
    while (j < s.size() && !isSpace(s[j])) ++j;
    out.push_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

bool isImageFile(const fs::path& p) {
  static const std::set<std::string> kExt = {".jpg", ".jpeg", ".png", ".ppm", ".bmp",
                                             ".pgm", ".tif", ".tiff", ".webp"};
  std::string e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return kExt.count(e) > 0;
}

}  // namespace

SourcePtr openImageList(const std::string& list_file, const std::string& root,
                        const ImageTransform& t) {
  std::error_code ec;
  if (fs::is_directory(list_file, ec))
    SLIM_THROW(DataError, list_file, ": is a folder, expected a list file of `path label` lines");
  std::ifstream in(list_file);
  if (!in) SLIM_THROW(DataError, list_file, ": cannot open the image list (", std::strerror(errno), ")");
  const std::string base = root.empty() ? fs::path(list_file).parent_path().string() : root;
  auto src = std::make_shared<ImageIndexSource>(list_file, base, t);
  const auto file_bytes = static_cast<size_t>(fs::file_size(list_file, ec));
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    if (no == 4096 && !ec) {  // estimate the line count from the first lines
      const auto read = static_cast<size_t>(in.tellg());
      if (read > 0 && read < file_bytes)
        src->reserve(static_cast<size_t>(4096.0 * file_bytes / read * 1.05), file_bytes);
    }
    const auto tok = tokens(line);
    if (tok.empty()) continue;
    if (tok.size() != 2)
      SLIM_THROW(DataError, list_file, ":", no, ": expected `path label`, found ", tok.size(),
                 tok.size() == 1 ? " field" : "+ fields", ": '", line, "'");
    int64_t label = -1;
    const auto [end, err] = std::from_chars(tok[1].data(), tok[1].data() + tok[1].size(), label);
    if (err != std::errc() || end != tok[1].data() + tok[1].size() || label < 0 ||
        label > INT32_MAX)
      SLIM_THROW(DataError, list_file, ":", no, ": label must be an integer in [0, 2^31), found '",
                 std::string(tok[1]), "' (for ", std::string(tok[0]), ")");
    src->add(tok[0], label, no);
  }
  if (in.bad()) SLIM_THROW(DataError, list_file, ": read error");
  if (src->size() == 0) SLIM_THROW(DataError, list_file, ": the image list is empty");
  src->shrink();
  return src;
}

SourcePtr openImageFolder(const std::string& dir, const ImageTransform& t,
                          std::vector<std::string>* classes) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    SLIM_THROW(DataError, dir, ": ImageFolder root is not a folder",
               fs::exists(dir, ec) ? "" : " (it does not exist)");
  std::vector<std::string> found;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory()) found.push_back(e.path().filename().string());
  if (ec) SLIM_THROW(DataError, dir, ": cannot list the folder: ", ec.message());
  std::sort(found.begin(), found.end());
  if (found.empty())
    SLIM_THROW(DataError, dir, ": no class sub-folders (ImageFolder expects DIR/<class>/<image>)");
  std::vector<std::string> names = classes && !classes->empty() ? *classes : found;
  for (const auto& f : found)
    if (std::find(names.begin(), names.end(), f) == names.end())
      SLIM_THROW(DataError, dir, "/", f, ": class folder not among the training classes (",
                 names.size(), " classes, e.g. '", names.front(), "')");
  auto src = std::make_shared<ImageIndexSource>(dir, dir, t);
  src->is_list_ = false;
  for (size_t c = 0; c < names.size(); ++c) {
    const fs::path cdir = fs::path(dir) / names[c];
    if (!fs::is_directory(cdir, ec)) continue;  // eval split without this class
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(
             cdir, fs::directory_options::follow_directory_symlink, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
      if (ec) break;
      if (it->is_regular_file(ec) && isImageFile(it->path()))
        files.push_back(fs::relative(it->path(), dir, ec).string());
    }
    if (ec) SLIM_THROW(DataError, cdir.string(), ": cannot list the folder: ", ec.message());
    if (files.empty())
      SLIM_THROW(DataError, cdir.string(), ": class folder has no image files (extensions "
                 ".jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp)");
    std::sort(files.begin(), files.end());
    for (const auto& f : files) src->add(f, static_cast<int64_t>(c), src->size() + 1);
  }
  src->shrink();
  if (classes) *classes = names;
  return src;
}

}  // namespace slim::data
