# Paddle importer tests (included from tests/unit/models/CMakeLists.txt).
if(TARGET slim_models AND TARGET slim_paddle_proto)
  add_library(slim_paddle_test_writer STATIC ${CMAKE_CURRENT_SOURCE_DIR}/paddle_writer.cc)
  target_link_libraries(slim_paddle_test_writer PUBLIC slim_models slim_paddle_proto)
  foreach(t paddle_format_test paddle_ops_nn_test paddle_ops_tensor_test paddle_fixtures_test)
    slim_test(${t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${t}.cc
              LIBS slim_models slim_paddle_test_writer LABELS models TIMEOUT 120)
  endforeach()
endif()
