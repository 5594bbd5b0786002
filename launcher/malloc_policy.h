// Where large buffers come from. glibc serves an allocation from its own
// mapping only above a threshold that starts at 128 KiB and, after the first
// such buffer is freed, rises to that buffer's size (up to 32 MiB): from then
// on activations and gradients come from the heap, and the holes they leave
// stay resident. A ViT-S/16 training step peaked at 2.8 GB that way, 1.4 GB
// of it free heap (mallinfo2 after the student forward). With a fixed 1 MiB
// threshold every large buffer has its own mapping and goes back to the
// system when freed: the same run peaks at 1.8 GB. The executor pools the
// activations and gradients (graph/executor_impl.h), so a training step maps
// and unmaps next to nothing (resnet18: 0.01 s more system time a step).
#pragma once

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace slim::launcher {

/// Fixes glibc's mmap threshold at 1 MiB unless the user chose one
/// (MALLOC_MMAP_THRESHOLD_ or GLIBC_TUNABLES in the environment).
inline void mapLargeBuffers() {
#if defined(__GLIBC__)
  if (std::getenv("MALLOC_MMAP_THRESHOLD_") != nullptr || std::getenv("GLIBC_TUNABLES") != nullptr)
    return;
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
#endif
}

}  // namespace slim::launcher
