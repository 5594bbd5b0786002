// The per-sample seed shared by every Source (declared in source.h).
#include "trainer/data/source.h"

#include "trainer/core/rng.h"

namespace slim::data {

uint64_t sampleSeed(uint64_t seed, int64_t epoch, int64_t index) {
  const uint64_t s = Rng::mix(Rng::mix(seed, static_cast<uint64_t>(epoch)),
                              static_cast<uint64_t>(index));
  // kNoAugment means "evaluation transform"; a training seed must never be it.
  return s == kNoAugment ? 0 : s;
}

}  // namespace slim::data
