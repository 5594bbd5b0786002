// sumOverRanks: a FixedSum over all ranks through StateSync::sumFixed.
#include "trainer/rank_reduction/state_sync.h"

#include <algorithm>
#include <vector>

namespace slim::rank_reduction {

Fixed sumOverRanks(StateSync& sync, FixedSum& sum, Fixed extra) {
  // Two extra slots: "some rank's partial was not representable", `extra`.
  const size_t n = sum.size();
  std::vector<Fixed> buf(sum.data(), sum.data() + n);
  buf.push_back(sum.bad() ? 1 : 0);
  buf.push_back(extra);
  sync.sumFixed(buf.data(), buf.size());
  std::copy(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n), sum.data());
  if (buf[n] != 0) sum.setBad();
  return buf[n + 1];
}

}  // namespace slim::rank_reduction
