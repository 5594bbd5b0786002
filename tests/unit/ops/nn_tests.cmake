# Tests of the heavy NN kernels (Conv, Gemm/MatMul, BatchNormalization, pools):
# forward against naive loops, backward by finite differences.
foreach(t conv depthwise gemm gemm_kernels norm pool exact_sum winograd)
  slim_test(${t}_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${t}_test.cc LIBS slim_ops
            LABELS unit ops TIMEOUT 120)
endforeach()
