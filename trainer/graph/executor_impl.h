// The executor's state (Executor::Impl), kept apart from executor.cc
// (planning, forward, backward). Private to trainer/graph.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "trainer/graph/executor.h"
#include "trainer/graph/fuse.h"
#include "trainer/graph/profile.h"
#include "trainer/rank_reduction/sample_layout.h"

namespace slim::graph {

struct Executor::Impl {
  std::unordered_map<std::string, int> id;  // tensor name -> value id
  std::vector<std::string> names;
  std::vector<Tensor> values;
  std::vector<Tensor> grads;
  std::vector<bool> grad_valid;
  std::vector<bool> requires_grad;          // value depends on a trainable param
  std::vector<std::vector<int>> node_in;    // -1 = omitted input
  std::vector<std::vector<int>> node_out;
  std::vector<bool> node_backward;          // node lies on a param -> output path
  std::vector<std::vector<bool>> node_in_grad;  // which inputs need a gradient
  std::vector<std::vector<Tensor>> scratch;     // din buffers per node
  std::vector<int> param_ids;
  std::vector<int> param_uses;              // backward consumers per value id
  std::vector<int> initializer_ids;
  std::vector<bool> is_param;               // value id is a trainable parameter
  bool prune_grads = false;                 // skip gradients no op uses (fusions on)
  std::vector<bool> useful;                 // value id: its gradient is used this step
  bool keep_grads = false;                  // keepIntermediateGrads
  std::multimap<size_t, Tensor> pool;       // free gradient buffers by capacity
  bool release_values = false;              // releaseForwardValues
  std::vector<bool> releasable;             // value id freed after its last forward use
  std::vector<int> kept;                    // keepValue: never released
  std::vector<bool> releasable_inference;   // the same without backward (not training)
  bool inference_released = false;          // the last forward was one of those
  std::vector<int> fwd_uses;                // forward consumptions per value id
  std::vector<size_t> last_bytes;           // bytes of each value in the last forward
  std::vector<bool> view_of_input;          // value id: its node made it share an input's storage
  std::vector<int> recompute_node;          // value id: node that rebuilds it for backward, or -1
  std::vector<int> first_bwd_reader;        // value id: lowest node whose backward reads it
  std::vector<rank_reduction::SampleLayout> samples;     // per value id (sample_layout.h)
  std::vector<rank_reduction::SampleLayout> in_samples;  // forward: one node's inputs'
  std::vector<const Shape*> in_shapes;                   // forward: one node's inputs'
  std::vector<int> alias_ids;               // outputs of fused activations
  std::vector<int> alias_of;                // value id -> the id it shares storage with, or -1
  std::vector<bool> alias_source;           // value id is shared by a fused activation's output
  std::vector<detail::MaskedActivation> masked;  // activations whose reader masks (fuse.h)
  std::vector<bool> grad_passthrough;       // node: hand the output gradient to the input
  std::vector<std::unique_ptr<ops::AbsMaxLink>> abs_max_links;  // fuse.h linkAbsMax
  std::vector<std::unique_ptr<ops::RowSumsLink>> row_sum_links;  // fuse.h linkRowSums
  std::vector<std::unique_ptr<ops::FrozenNormLink>> norm_links;  // fuse.h fuseFrozenNorms
  std::vector<std::unique_ptr<ops::ClipLink>> clip_links;  // fuse.h handOverClips
  std::vector<std::unique_ptr<ops::RowVisitLink>> row_visit_links;  // fuse.h linkRowVisits

  // Gives t a pooled buffer of at least `bytes` (smallest that fits) unless
  // it has one; with none pooled, resize() allocates as usual.
  void acquire(Tensor& t, size_t bytes) {
    if (t.capacity() >= bytes) return;
    auto it = pool.lower_bound(bytes);
    if (it == pool.end()) return;
    if (t.capacity() > 0) pool.emplace(t.capacity(), std::move(t));
    t = std::move(it->second);
    pool.erase(it);
  }
  // First forward: an output's size is known only after its op ran, so it
  // was freshly allocated. Moves it into a pooled buffer that fits (one
  // copy) and frees the fresh one; otherwise the pool would keep one buffer
  // per released activation instead of the few that are live at once.
  void adopt(Tensor& t) {
    auto it = pool.lower_bound(t.bytes());
    if (it == pool.end()) return;
    Tensor p = std::move(it->second);
    pool.erase(it);
    p.resize(t.shape(), t.dtype());
    p.copyFrom(t);
    t = std::move(p);
  }
  // A buffer another tensor still shares (a view of a released activation)
  // is not pooled: resize() would not reuse it anyway.
  void release(Tensor& t) {
    if (t.capacity() > 0 && !t.storageShared()) pool.emplace(t.capacity(), std::move(t));
    t = Tensor();
  }
  // SLIM_PROFILE=1: per-op-type forward/backward seconds, printed at exit.
  detail::Profile* profile = nullptr;
  std::vector<std::string> profile_key;     // per node: row of the profile table

  int idOf(const std::string& n) {
    auto it = id.find(n);
    if (it != id.end()) return it->second;
    int k = static_cast<int>(names.size());
    id.emplace(n, k);
    names.push_back(n);
    return k;
  }
};

}  // namespace slim::graph
