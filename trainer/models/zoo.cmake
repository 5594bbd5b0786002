# The zoo and the model-loading dispatch (this folder's own sources).
list(APPEND SLIM_MODELS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/zoo.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/load.cc)
