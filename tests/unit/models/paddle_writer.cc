// Test-only Paddle model writer (see paddle_writer.h).
#include "tests/unit/models/paddle_writer.h"

#include <cstring>
#include <filesystem>
#include <fstream>

namespace slim::test {

PaddleOp& PaddleOp::in(const std::string& slot, const std::vector<std::string>& vars) {
  auto* v = op_->add_inputs();
  v->set_parameter(slot);
  for (const auto& n : vars) v->add_arguments(n);
  return *this;
}
PaddleOp& PaddleOp::out(const std::string& slot, const std::vector<std::string>& vars) {
  auto* v = op_->add_outputs();
  v->set_parameter(slot);
  for (const auto& n : vars) v->add_arguments(n);
  return *this;
}
pp::OpDesc::Attr* PaddleOp::attr(const std::string& name, pp::AttrType t) {
  auto* a = op_->add_attrs();
  a->set_name(name);
  a->set_type(t);
  return a;
}
PaddleOp& PaddleOp::i(const std::string& name, int32_t v) { attr(name, pp::INT)->set_i(v); return *this; }
PaddleOp& PaddleOp::f(const std::string& name, float v) { attr(name, pp::FLOAT)->set_f(v); return *this; }
PaddleOp& PaddleOp::b(const std::string& name, bool v) { attr(name, pp::BOOLEAN)->set_b(v); return *this; }
PaddleOp& PaddleOp::s(const std::string& name, const std::string& v) {
  attr(name, pp::STRING)->set_s(v);
  return *this;
}
PaddleOp& PaddleOp::ints(const std::string& name, const std::vector<int32_t>& v) {
  auto* a = attr(name, pp::INTS);
  for (int32_t x : v) a->add_ints(x);
  return *this;
}

PaddleModelBuilder::PaddleModelBuilder() {
  auto* b = prog_.add_blocks();
  b->set_idx(0);
  b->set_parent_idx(-1);
  prog_.mutable_version()->set_version(2004001);
  for (auto [name, type] : {std::pair{"feed", pp::VarType::FEED_MINIBATCH},
                            std::pair{"fetch", pp::VarType::FETCH_LIST}}) {
    auto* v = b->add_vars();
    v->set_name(name);
    v->mutable_type()->set_type(type);
    v->set_persistable(true);
  }
}

void PaddleModelBuilder::var(const std::string& name, const Shape& dims, int dtype) {
  auto* v = block()->add_vars();
  v->set_name(name);
  v->mutable_type()->set_type(pp::VarType::LOD_TENSOR);
  auto* t = v->mutable_type()->mutable_lod_tensor()->mutable_tensor();
  t->set_data_type(static_cast<pp::VarType::Type>(dtype));
  for (int64_t d : dims) t->add_dims(d);
}

void PaddleModelBuilder::feed(const std::string& name, const Shape& dims) {
  var(name, dims);
  op("feed").in("X", {"feed"}).out("Out", {name}).i("col", feeds_++);
}

void PaddleModelBuilder::fetch(const std::string& name) {
  op("fetch").in("X", {name}).out("Out", {"fetch"}).i("col", fetches_++);
}

void PaddleModelBuilder::param(const std::string& name, const Tensor& value) {
  paramAs(name, value, value.dtype() == DType::kI64 ? pp::VarType::INT64 : pp::VarType::FP32);
}

void PaddleModelBuilder::paramAs(const std::string& name, const Tensor& value, int dtype) {
  var(name, value.shape(), value.dtype() == DType::kI64 ? pp::VarType::INT64 : pp::VarType::FP32);
  block()->mutable_vars(block()->vars_size() - 1)->set_persistable(true);
  params_[name] = {value, dtype};
}

PaddleOp PaddleModelBuilder::op(const std::string& type) {
  auto* o = block()->add_ops();
  o->set_type(type);
  return PaddleOp(o);
}

std::string PaddleModelBuilder::programBytes() const { return prog_.SerializeAsString(); }

std::string paddleRecord(const Tensor& t, int dtype) {
  std::string out;
  auto put = [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); };
  uint32_t v0 = 0;
  uint64_t lod = 0;
  put(&v0, 4);
  put(&lod, 8);
  put(&v0, 4);
  pp::VarType::TensorDesc desc;
  desc.set_data_type(static_cast<pp::VarType::Type>(dtype));
  for (int64_t d : t.shape()) desc.add_dims(d);
  std::string d = desc.SerializeAsString();
  int32_t dsize = static_cast<int32_t>(d.size());
  put(&dsize, 4);
  out += d;
  if (dtype == pp::VarType::FP64) {
    for (int64_t k = 0; k < t.numel(); ++k) {
      double x = t.f32()[k];
      put(&x, 8);
    }
  } else {
    put(t.raw(), t.bytes());
  }
  return out;
}

std::string PaddleModelBuilder::combinedParams() const {
  std::string out;
  for (const auto& [name, p] : params_) out += paddleRecord(p.first, p.second);  // map: sorted
  return out;
}

void PaddleModelBuilder::write(const std::string& dir, const std::string& model_file,
                               const std::string& params_file) const {
  std::filesystem::create_directories(dir);
  auto dump = [](const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  };
  dump(dir + "/" + model_file, programBytes());
  if (!params_file.empty()) {
    dump(dir + "/" + params_file, combinedParams());
  } else {
    for (const auto& [name, p] : params_) dump(dir + "/" + name, paddleRecord(p.first, p.second));
  }
}

}  // namespace slim::test
