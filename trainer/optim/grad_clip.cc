// Gradient clipping (see grad_clip.h). Norms are accumulated in double.
#include "trainer/optim/grad_clip.h"

#include <algorithm>
#include <cmath>

namespace slim::optim {
namespace {

double sumSquares(const Tensor& g) {
  const float* p = g.f32();
  double s = 0.0;
  for (int64_t i = 0; i < g.numel(); ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

void scale(Tensor& g, float k) {
  float* p = g.f32();
  for (int64_t i = 0; i < g.numel(); ++i) p[i] *= k;
}

void checkNorm(float clip_norm) {
  if (!(clip_norm > 0.0f))
    SLIM_THROW(ConfigError, "grad_clip: clip_norm must be > 0, got ", clip_norm);
}

}  // namespace

float clipGradByGlobalNorm(std::vector<Tensor*>& grads, float clip_norm) {
  checkNorm(clip_norm);
  double total = 0.0;
  for (const Tensor* g : grads)
    if (g) total += sumSquares(*g);
  const double norm = std::sqrt(total);
  if (norm > clip_norm) {
    const auto k = static_cast<float>(clip_norm / norm);
    for (Tensor* g : grads)
      if (g) scale(*g, k);
  }
  return static_cast<float>(norm);
}

void clipGradByNorm(std::vector<Tensor*>& grads, float clip_norm) {
  checkNorm(clip_norm);
  for (Tensor* g : grads) {
    if (!g) continue;
    const double norm = std::sqrt(sumSquares(*g));
    if (norm > clip_norm) scale(*g, static_cast<float>(clip_norm / norm));
  }
}

void clipGradByValue(std::vector<Tensor*>& grads, float min, float max) {
  if (!(min <= max))
    SLIM_THROW(ConfigError, "grad_clip: ClipGradByValue needs min <= max, got min ",
               min, " max ", max);
  for (Tensor* g : grads) {
    if (!g) continue;
    float* p = g->f32();
    for (int64_t i = 0; i < g->numel(); ++i) p[i] = std::clamp(p[i], min, max);
  }
}

}  // namespace slim::optim
