# Slice/Split/Tile/Range and comparison/selection ops (slice_ops.cc,
# logic_ops.cc): one executable.
slim_test(ops_slice_ops_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/slice_ops_test.cc
          LIBS slim_ops LABELS unit ops TIMEOUT 120)
