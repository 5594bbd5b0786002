# Resize/Upsample, LayerNormalization, InstanceNormalization, PRelu,
# ReduceMax, ArgMax, ConvTranspose (norm_extra.cc, resize.cc, prelu.cc,
# reduce_max.cc, conv_transpose.cc): one executable.
slim_test(ops_nn_extra_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/nn_extra_test.cc
          LIBS slim_ops LABELS unit ops TIMEOUT 120)
slim_test(ops_conv_transpose_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/conv_transpose_test.cc
          LIBS slim_ops LABELS unit ops TIMEOUT 120)
