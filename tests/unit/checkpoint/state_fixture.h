// Shared helpers for checkpoint tests: a TrainingState with every dtype,
// names with '/', '.', '%', attributes and words, plus a scratch directory.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "checkpoint/training_state.h"
#include "trainer/core/rng.h"

namespace slim::test {

/// A fresh directory under /tmp removed at destruction.
struct ScratchDir {
  std::filesystem::path path;
  ScratchDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    path = std::filesystem::temp_directory_path() /
           (std::string("slim_ckpt_") + info->test_suite_name() + "_" + info->name() + "_" +
            std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// Random float tensor of `shape` from `rng`.
inline Tensor randomTensor(Shape shape, Rng& rng) {
  Tensor t(std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) t.f32()[i] = rng.normal();
  return t;
}

/// A state exercising every storable dtype, scalar and empty tensors, odd
/// names, attributes of all three kinds and RNG words; `seed` varies values.
inline checkpoint::TrainingState makeState(int64_t step, uint64_t seed = 1) {
  Rng rng(seed);
  checkpoint::TrainingState s;
  s.step = step;
  s.epoch = step / 10;
  s.sample_offset = 4096 + step;
  s.world_size = 4;
  s.seed = 0xFFFFFFFFFFFFFFF0ull + seed;  // needs all 64 bits
  s.config_yaml = "Global:\n  model_dir: ./m\n  # \xC3\xA9 utf-8\nTrainConfig:\n  epochs: 2\n";
  s.params.tensors["/layer1/Conv_output_0"] = randomTensor({4, 3, 3, 3}, rng);
  s.params.tensors["conv1.weight"] = randomTensor({8, 4, 1, 1}, rng);
  s.params.tensors[".hidden%2F"] = randomTensor({5}, rng);
  s.params.tensors["pact.alpha"] = Tensor::scalar(6.25f);
  s.params.tensors["empty"] = Tensor({0, 3});
  Tensor mask({8, 4, 1, 1}, DType::kU8);
  for (int64_t i = 0; i < mask.numel(); ++i) mask.data<uint8_t>()[i] = rng.below(4) != 0;
  s.masks.tensors["conv1.weight"] = mask;
  Tensor idx({3}, DType::kI64);
  idx.data<int64_t>()[0] = -1;
  idx.data<int64_t>()[1] = int64_t{1} << 40;
  idx.data<int64_t>()[2] = 7;
  s.buffers.tensors["bn1.num_batches"] = idx;
  Tensor q({4}, DType::kI8);
  for (int i = 0; i < 4; ++i) q.data<int8_t>()[i] = static_cast<int8_t>(-128 + 50 * i);
  s.quant.tensors["conv1.weight/int8"] = q;
  Tensor i32({2}, DType::kI32);
  i32.data<int32_t>()[0] = -5;
  i32.data<int32_t>()[1] = 1 << 30;
  s.quant.tensors["window"] = i32;
  s.quant.tensors["conv1.weight/scale"] = randomTensor({8}, rng);
  s.optimizer.tensors["conv1.weight/momentum"] = randomTensor({8, 4, 1, 1}, rng);
  s.optimizer.attrs["step_count"] = int64_t{step};
  s.schedule.attrs["gmp/cur_iteration"] = int64_t{step * 2};
  s.schedule.attrs["gmp.ratio"] = 0.375;
  s.schedule.attrs["lr.kind"] = std::string("cosine");
  s.schedule.attrs["empty"] = std::string();
  s.rng.words["sampler"] = {1, 2, 3, ~0ull};
  s.rng.words["init/dropout"] = {rng.next(), rng.next(), rng.next(), rng.next()};
  return s;
}

}  // namespace slim::test
