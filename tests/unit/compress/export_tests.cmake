# Deployable exports: INT8 QDQ graph vs the fake-quant training graph (slimtrain
# executor and ONNX Runtime), FP32 student, QDQ kernels.
foreach(t qdq fp32 exact)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/export_${t}_test.cc)
    slim_test(export_${t}_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/export_${t}_test.cc
              LIBS slim_compress slim_models LABELS unit compress TIMEOUT 120)
  endif()
endforeach()
# Batch norms back for folded convolutions (compress/renorm).
slim_test(compress_renorm_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/renorm_test.cc
          LIBS slim_compress LABELS unit compress TIMEOUT 120)
