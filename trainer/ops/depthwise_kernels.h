// Internal to the depthwise kernels (depthwise*.cc): the two kernels, which
// depthwise.cc chooses between, and the dw-reduction helpers both use so that
// they give the same bits (depthwise.cc's header says how).
#pragma once

#include <cmath>
#include <cstring>
#include <vector>

#include "trainer/ops/conv_kernels.h"
#include "trainer/ops/parallel.h"

namespace slim::ops::detail::depthwise {

inline void storeV8(float* p, V8 v) { std::memcpy(p, &v, sizeof(v)); }

// One term of the dw tail (the Q % 8 positions after the 8-lane blocks): the
// products of whole groups of four are rounded before they are added, the
// rest fused. These are the bits of the earlier scalar tail loop as GCC
// vectorised it, kept so that trained models do not change; written out so
// they no longer depend on the compiler.
inline float tailTerm(float s, float d, float v, bool rounded) {
  if (rounded) {
    const volatile float p = d * v;  // rounded: no contraction across it
    return s + p;
  }
#if defined(__FMA__)
  return std::fma(d, v, s);
#else
  return s + d * v;
#endif
}
inline V8 tailTerm(V8 s, V8 d, V8 v, bool rounded) {
  if (!rounded) return fmaV8(d, v, s);
  const volatile V8 p = d * v;
  return s + p;
}

// The 8-lane partial sums of the dw reduction, folded.
inline V8 foldLanes(const V8* a) {
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}
inline float foldLanes(const V8& a) {
  return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]));
}

// Per channel (depthwise_per_channel.cc): any multiplier, any C.
void forwardPerChannel(const DepthwisePlan& pl, const float* x, const float* w,
                       const float* bias, int64_t c, int64_t mult, float* y,
                       std::vector<float>& scratch);
void backwardPerChannel(const DepthwisePlan& pl, const float* x, const float* w,
                        const float* dy, int64_t c, int64_t mult, float* dx, float* dw,
                        std::vector<float>& scratch);

// Eight channels per vector (depthwise_channel_vectors.cc): mult == 1, C % 8 == 0.
void forwardChannelVectors(const DepthwisePlan& pl, const float* x, const float* w,
                           const float* bias, int64_t c, float* y,
                           std::vector<float>& scratch);
void backwardChannelVectors(const DepthwisePlan& pl, const float* x, const float* w,
                            const float* dy, int64_t c, float* dx, float* dw,
                            std::vector<float>& scratch);

}  // namespace slim::ops::detail::depthwise
