# Einsum (einsum.cc); links slim_models to read ONNX's own einsum test cases.
slim_test(ops_einsum_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/einsum_test.cc
          LIBS slim_ops slim_models LABELS unit ops TIMEOUT 120)
