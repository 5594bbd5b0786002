# QAT tests: fake-quant numerics + weight quantizer, activation observers +
# PACT, and the insertion pass (with an executor step on the rewritten graph).
foreach(t numerics observer pass pact_rows pact_rank)
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/quant_${t}_test.cc)
    slim_test(quant_${t}_test SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/quant_${t}_test.cc
              LIBS slim_compress LABELS unit compress TIMEOUT 60)
  endif()
endforeach()
