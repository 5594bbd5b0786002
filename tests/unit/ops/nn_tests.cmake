# Tests of the heavy NN kernels (Conv, Gemm/MatMul, BatchNormalization, pools):
# forward against naive loops, backward by finite differences.
foreach(t conv depthwise gemm gemm_kernels row_dots norm pool exact_sum winograd)
  slim_test(${t}_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${t}_test.cc LIBS slim_ops
            LABELS unit ops TIMEOUT 120)
endforeach()
# Rank equivalence for gradients below the fixed point's 2^-41 (exact_sum.h):
# one rank vs two thread-ranks with twice the dy, bit for bit, per op.
slim_test(ops_tiny_grad_exact_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/tiny_grad_exact_test.cc
          LIBS slim_ops LABELS unit ops TIMEOUT 120)
