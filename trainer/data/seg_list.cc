// PaddleSeg-style `image mask` lists as a Source with (H, W) mask labels.
#include "trainer/data/seg_list.h"

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "trainer/data/image_decode.h"

namespace slim::data {
namespace {

std::vector<uint8_t> readFile(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr)
    throw BadSampleError(path + ": cannot open file (" + std::strerror(errno) + ")");
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw BadSampleError(path + ": error reading file");
  return bytes;
}

class SegListSource : public Source {
 public:
  SegListSource(std::string list, std::string root, ImageTransform t)
      : list_(std::move(list)), root_(std::move(root)), t_(t) {}

  void add(std::string image, std::string mask, int64_t line) {
    images_.push_back(std::move(image));
    masks_.push_back(std::move(mask));
    lines_.push_back(line);
  }

  int64_t size() const override { return static_cast<int64_t>(images_.size()); }
  Shape sampleShape() const override { return {3, t_.img_size, t_.img_size}; }
  DType pixelType() const override { return DType::kU8; }
  int64_t label(int64_t) const override { return 0; }
  // Masks are not read at open (that would decode every file): values are
  // checked where they are used.
  LabelMax maxLabel() const override { return {}; }
  Shape labelShape() const override { return {t_.img_size, t_.img_size}; }
  bool expensive() const override { return true; }

  void read(int64_t i, uint64_t seed, void* dst) const override {
    try {
      loadImageSample(path(images_, i), t_, seed, static_cast<uint8_t*>(dst));
    } catch (const BadSampleError& e) {
      throw BadSampleError(where(i) + ": " + e.what());
    }
  }

  void readLabel(int64_t i, uint64_t seed, int64_t* dst) const override {
    const std::string image = path(images_, i), mask = path(masks_, i);
    try {
      const std::vector<uint8_t> mb = readFile(mask);
      const MaskImage m = decodeMaskPng(mb.data(), mb.size(), mask, t_.max_pixels);
      // The crop is drawn from the image's size: the mask must have it too.
      std::vector<uint8_t> ib = readFile(image);
      int64_t w = 0, h = 0;
      imageSize(ib.data(), ib.size(), image, &w, &h);
      if (w != m.width || h != m.height)
        throw BadSampleError(mask + ": mask is " + std::to_string(m.width) + "x" +
                             std::to_string(m.height) + " but its image " + image + " is " +
                             std::to_string(w) + "x" + std::to_string(h));
      transformMask(m.values.data(), m.width, m.height, t_, seed, kIgnoreLabel, dst);
    } catch (const BadSampleError& e) {
      throw BadSampleError(where(i) + ": " + e.what());
    }
  }

  std::string where(int64_t i) const override {
    return list_ + ":" + std::to_string(lines_[static_cast<size_t>(i)]) + " (" +
           images_[static_cast<size_t>(i)] + ")";
  }
  std::string describe() const override {
    return "segmentation list " + list_ + " (" + std::to_string(size()) + " images with masks)";
  }

 private:
  std::string path(const std::vector<std::string>& v, int64_t i) const {
    const std::string& rel = v[static_cast<size_t>(i)];
    if (rel.empty() || rel[0] == '/' || root_.empty()) return rel;
    return root_ + "/" + rel;
  }

  std::string list_, root_;
  ImageTransform t_;
  std::vector<std::string> images_, masks_;
  std::vector<int64_t> lines_;
};

}  // namespace

SourcePtr openSegList(const std::string& list_file, const std::string& root,
                      const ImageTransform& t) {
  std::ifstream in(list_file);
  if (!in)
    SLIM_THROW(DataError, list_file, ": cannot open segmentation list (", std::strerror(errno),
               ")");
  const std::string base =
      root.empty() ? std::filesystem::path(list_file).parent_path().string() : root;
  auto src = std::make_shared<SegListSource>(list_file, base, t);
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    std::vector<std::string> tok;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j > i) tok.push_back(line.substr(i, j - i));
      i = j;
    }
    if (tok.empty()) continue;
    if (tok.size() != 2)
      SLIM_THROW(DataError, list_file, ":", no, ": expected `image_path mask_path` (PaddleSeg's "
                 "list format), found ", tok.size(), " field(s): '", line, "'");
    src->add(tok[0], tok[1], no);
  }
  if (src->size() == 0) SLIM_THROW(DataError, list_file, ": the segmentation list is empty");
  return src;
}

}  // namespace slim::data
