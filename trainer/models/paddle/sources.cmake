# Paddle importer (included from trainer/models/CMakeLists.txt). framework.proto
# is compiled by protoc into ${PROJECT_BINARY_DIR}/trainer/models/paddle/ so the
# generated header is included as "trainer/models/paddle/framework.pb.h".
set(SLIM_PADDLE_PROTO ${CMAKE_CURRENT_SOURCE_DIR}/paddle/framework.proto)
set(SLIM_PADDLE_PB_DIR ${PROJECT_BINARY_DIR}/trainer/models/paddle)
if(TARGET protobuf::protoc)
  set(SLIM_PROTOC protobuf::protoc)
else()
  set(SLIM_PROTOC ${Protobuf_PROTOC_EXECUTABLE})
endif()
add_custom_command(
  OUTPUT ${SLIM_PADDLE_PB_DIR}/framework.pb.cc ${SLIM_PADDLE_PB_DIR}/framework.pb.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${SLIM_PADDLE_PB_DIR}
  COMMAND ${SLIM_PROTOC} --cpp_out=${PROJECT_BINARY_DIR} -I ${PROJECT_SOURCE_DIR}
          ${SLIM_PADDLE_PROTO}
  DEPENDS ${SLIM_PADDLE_PROTO}
  COMMENT "protoc: Paddle framework.proto"
  VERBATIM)
# Generated code gets its own small library, without the project's warnings.
add_library(slim_paddle_proto STATIC ${SLIM_PADDLE_PB_DIR}/framework.pb.cc)
target_include_directories(slim_paddle_proto PUBLIC ${PROJECT_BINARY_DIR})
target_link_libraries(slim_paddle_proto PUBLIC protobuf::libprotobuf)
set_target_properties(slim_paddle_proto PROPERTIES POSITION_INDEPENDENT_CODE ON)

list(APPEND SLIM_MODELS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/paddle/paddle_program.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/paddle/paddle_params.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/paddle/paddle_import.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/paddle/paddle_convert.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/paddle/paddle_convert_ops.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/paddle/paddle_convert_tensor.cc)
list(APPEND SLIM_MODELS_DEPS slim_paddle_proto protobuf::libprotobuf)
