# Unstructured / GMP pruning tests (trainer/compress/prune).
foreach(t candidates gmp masks pruner)
  slim_test(compress_prune_${t}_test SOURCES prune_${t}_test.cc LIBS slim_compress TIMEOUT 60)
endforeach()
