// libFuzzer target for the Paddle reader: arbitrary bytes go through the
// ProgramDesc parser (and, when it parses, a program-only import) and through
// the params record reader. Only ModelError may come out; crashes, leaks and
// out-of-bounds reads are what the fuzzer looks for.
#include <cstddef>
#include <cstdint>
#include <string>

#include "trainer/models/paddle/paddle_import.h"
#include "trainer/models/paddle/paddle_params.h"
#include "trainer/models/paddle/paddle_program.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace slim;
  // First byte picks the target so one corpus serves both readers.
  if (size == 0) return 0;
  const bool params = data[0] & 1;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    if (params) {
      size_t off = 0;
      while (off < bytes.size())
        models::readPaddleRecord(bytes.data(), bytes.size(), off, "fuzz", "v");
    } else {
      models::parsePaddleProgramBytes(bytes.data(), bytes.size(), "fuzz");
      models::PaddleImportOptions opts;
      opts.program_only = true;
      models::importPaddleBytes(bytes, "", "fuzz", opts);
    }
  } catch (const Error&) {
    // Expected for malformed input.
  }
  return 0;
}
