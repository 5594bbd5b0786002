// Deterministic random numbers whose whole state is four 64-bit words, so it
// can be checkpointed and restored exactly (xoshiro256**, seeded through
// splitmix64). Normal samples use Box-Muller without caching a spare value,
// so the state alone determines the sequence.
#pragma once

#include <array>
#include <cstdint>

namespace slim {

class Rng {
 public:
  using State = std::array<uint64_t, 4>;

  explicit Rng(uint64_t seed = 0) { reseed(seed); }

  /// Re-seeds; the same seed always yields the same sequence.
  void reseed(uint64_t seed);
  /// Next raw 64-bit value.
  uint64_t next();
  /// Uniform in [0, 1).
  float uniform();
  /// Uniform integer in [0, n).
  uint64_t below(uint64_t n);
  /// Standard normal sample.
  float normal();

  const State& state() const { return s_; }
  void setState(const State& s) { s_ = s; }

  /// Derives an independent seed from (base, stream) — e.g. (seed, epoch).
  static uint64_t mix(uint64_t base, uint64_t stream);

 private:
  State s_{};
};

}  // namespace slim
