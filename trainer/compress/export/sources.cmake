# Deployable exports: INT8 QDQ graph, FP32 student, QuantizeLinear /
# DequantizeLinear kernels. Appended to the slim_compress library.
list(APPEND SLIM_COMPRESS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/export/qdq_ops.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/export/student_extract.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/export/qdq_build.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/export/qdq_batchnorm.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/export/qdq_weights.cc)
