# QAT: fake-quant numerics and ops (FakeQuantWeight, FakeQuantAct, Pact) and
# the insertion pass. Appended to the slim_compress library.
list(APPEND SLIM_COMPRESS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/quant/numerics.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/quant/fake_quant_ops.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/quant/pact_op.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/quant/bias_quant_op.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/quant/qat_pass.cc)
# The gradient masks in pact_op.cc (float selects) stay scalar under GCC's
# default -ftrapping-math; results do not depend on it.
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/quant/pact_op.cc
  PROPERTIES COMPILE_OPTIONS -fno-trapping-math)
