// Compute threads inside one rank (OpenMP; also Eigen's, for the bench probe).
// Ranks x threads should equal the cores of a node: the launcher picks
// cores / ranks-on-this-node unless Global.num_threads says otherwise.
#pragma once

namespace slim {

/// Sets the number of compute threads of this process (>= 1).
void setComputeThreads(int n);
/// Current number of compute threads.
int computeThreads();
/// max(1, online cores / local_ranks).
int defaultComputeThreads(int local_ranks);
/// Records how many cores this rank may use (the launcher sets it to
/// defaultComputeThreads(local ranks)); default: all online cores.
void setCoresPerRank(int n);
/// Cores of this rank not taken by compute threads: max(0, cores per rank -
/// computeThreads()). Decode workers default to this (at least 1).
int spareCores();

}  // namespace slim
