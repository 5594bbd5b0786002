# Distillation tests: loss kernels, teacher merge + default nodes, objective.
foreach(t ops merge loss)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/distill_${t}_test.cc)
    slim_test(distill_${t}_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/distill_${t}_test.cc
              LIBS slim_compress LABELS unit compress TIMEOUT 60)
  endif()
endforeach()
