# ONNX import/export tests (owner: onnx). Included by tests/unit/models/CMakeLists.txt.
if(TARGET slim_models)
  foreach(t testdata fixtures roundtrip bad_input trainable)
    slim_test(onnx_${t}_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/onnx_${t}_test.cc
      LIBS slim_models TIMEOUT 300)
  endforeach()
  # Exports four torchvision models with PyTorch on first run (~1 min).
  slim_test(onnx_torchvision_test SOURCES ${CMAKE_CURRENT_LIST_DIR}/onnx_torchvision_test.cc
    LIBS slim_models TIMEOUT 900)
endif()
