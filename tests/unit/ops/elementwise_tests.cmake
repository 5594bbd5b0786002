# Light ops (ops2): activations, broadcasting arithmetic, shape plumbing,
# softmax/loss, math and tensor ops. One executable per family.
foreach(family activation elementwise shape_ops softmax math_ops tensor_ops)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${family}_test.cc)
    slim_test(ops_${family}_test SOURCES ${family}_test.cc LIBS slim_ops
               LABELS unit ops TIMEOUT 120)
  endif()
endforeach()
