# Rank reduction (rank_reduction.h): one module, built into the layers that
# use it. A library of its own would make a cycle: the ops need its exact sums
# and StateSync (exact_sum.h uses the ops' threading, trainer/ops/parallel.h),
# and its comm-backed parts need comm, which the ops layer must not see. So
# each part is compiled by the lowest layer that uses it and includes only
# that layer and below:
#   ops:   exact_sum.{h,cc}, sample_groups.h, state_sync.{h,cc}  (trainer/ops/CMakeLists.txt)
#   graph: rank_reduction.h, plan.cc, sample_layout.{h,cc}  (trainer/graph/CMakeLists.txt)
#   train: comm_state_sync.h, gradient_router.{h,cc}  (trainer/train/CMakeLists.txt)
set(SLIM_RANK_REDUCTION_OPS_SOURCES ${CMAKE_CURRENT_LIST_DIR}/state_sync.cc
  ${CMAKE_CURRENT_LIST_DIR}/exact_sum.cc)
set(SLIM_RANK_REDUCTION_GRAPH_SOURCES ${CMAKE_CURRENT_LIST_DIR}/plan.cc
  ${CMAKE_CURRENT_LIST_DIR}/sample_layout.cc)
set(SLIM_RANK_REDUCTION_TRAIN_SOURCES ${CMAKE_CURRENT_LIST_DIR}/gradient_router.cc)
