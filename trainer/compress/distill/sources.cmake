# Distillation: loss kernels, teacher merge, default nodes, objective builder.
list(APPEND SLIM_COMPRESS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/distill/distill_ops.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/distill/teacher_merge.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/distill/distill_nodes.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/distill/distill_loss.cc)
