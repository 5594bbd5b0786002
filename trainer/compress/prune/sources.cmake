# Unstructured / GMP pruning (act-reference §3): candidates, GMP ratio table,
# mask computation, and the Pruner that holds masks through training.
list(APPEND SLIM_COMPRESS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/prune/candidates.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/prune/gmp_ratio.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/prune/mask_compute.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/prune/pruner.cc)
