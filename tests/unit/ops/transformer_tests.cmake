# Weight gradients of the ops a transformer trains through (MatMul, the
# broadcasting Add/Sub/Mul/Div, Gather on an embedding table): gradient
# checks of the exact (rank-reduced) path and 1 rank vs 2 ranks bit for bit.
slim_test(ops_weight_grad_exact_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/weight_grad_exact_test.cc
          LIBS slim_ops LABELS unit ops TIMEOUT 120)
