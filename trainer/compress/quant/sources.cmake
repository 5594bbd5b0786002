# QAT: fake-quant numerics and ops (FakeQuantWeight, FakeQuantAct, Pact) and
# the insertion pass. Appended to the slim_compress library.
list(APPEND SLIM_COMPRESS_SOURCES
  ${CMAKE_CURRENT_SOURCE_DIR}/quant/numerics.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/quant/fake_quant_ops.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/quant/pact_op.cc
  ${CMAKE_CURRENT_SOURCE_DIR}/quant/qat_pass.cc)
