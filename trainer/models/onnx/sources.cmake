# ONNX import/export, TensorProto files and `infer`; include()d from
# trainer/models/CMakeLists.txt.
list(APPEND SLIM_MODELS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx/onnx_convert.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx/tensor_proto.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx/wire_scan.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx/onnx_normalize.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx/onnx_fold.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx/onnx_import.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx/onnx_export.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/onnx/onnx_infer.cc)
list(APPEND SLIM_MODELS_DEPS onnx onnx_proto protobuf::libprotobuf)
