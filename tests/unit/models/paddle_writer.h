// Test-only writer of Paddle inference models (docs/paddle-format.md): builds
// a ProgramDesc with feed/fetch ops and parameters, and writes the combined
// params file (records sorted by name) or one file per parameter.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "trainer/core/tensor.h"
#include "trainer/models/paddle/framework.pb.h"

namespace slim::test {

namespace pp = paddle::framework::proto;

/// Fluent access to one OpDesc being built.
class PaddleOp {
 public:
  explicit PaddleOp(pp::OpDesc* op) : op_(op) {}
  PaddleOp& in(const std::string& slot, const std::vector<std::string>& vars);
  PaddleOp& out(const std::string& slot, const std::vector<std::string>& vars);
  PaddleOp& i(const std::string& name, int32_t v);
  PaddleOp& f(const std::string& name, float v);
  PaddleOp& b(const std::string& name, bool v);
  PaddleOp& s(const std::string& name, const std::string& v);
  PaddleOp& ints(const std::string& name, const std::vector<int32_t>& v);

 private:
  pp::OpDesc::Attr* attr(const std::string& name, pp::AttrType t);
  pp::OpDesc* op_;
};

class PaddleModelBuilder {
 public:
  PaddleModelBuilder();
  /// Declares a non-persistable tensor var (dims may hold -1).
  void var(const std::string& name, const Shape& dims, int dtype = pp::VarType::FP32);
  /// Declares graph input `name` and its feed op (col = order of calls).
  void feed(const std::string& name, const Shape& dims);
  /// Adds a fetch op for `name` (col = order of calls).
  void fetch(const std::string& name);
  /// Declares a persistable parameter with its value (FP32 / INT64 records).
  void param(const std::string& name, const Tensor& value);
  /// Declares a persistable var whose record is written as FP64 / other dtype.
  void paramAs(const std::string& name, const Tensor& value, int record_dtype);
  /// Appends an op of `type`.
  PaddleOp op(const std::string& type);

  pp::ProgramDesc& program() { return prog_; }
  std::string programBytes() const;
  /// Records of all params, sorted by name (the combined file).
  std::string combinedParams() const;
  /// Writes dir/model_file (+ dir/params_file, or one file per param when "").
  void write(const std::string& dir, const std::string& model_file,
             const std::string& params_file) const;

 private:
  pp::BlockDesc* block() { return prog_.mutable_blocks(0); }
  pp::ProgramDesc prog_;
  std::map<std::string, std::pair<Tensor, int>> params_;
  int feeds_ = 0, fetches_ = 0;
};

/// One params record of `t` (float32 data written as `dtype`: FP32, FP64 or
/// FP16 not supported; int64 data as INT64).
std::string paddleRecord(const Tensor& t, int dtype);

}  // namespace slim::test
