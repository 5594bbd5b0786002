# Per-channel renormalisation of convolutions whose batch norm was folded
# away by the exporter (renorm.h).
list(APPEND SLIM_COMPRESS_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/renorm/renorm.cc)
