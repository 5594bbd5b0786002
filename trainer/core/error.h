// Error hierarchy and SLIM_ENFORCE* checks used by every layer.
// Errors carry context (file:line, condition, both values of a comparison);
// the launcher maps error classes to exit codes (see exitCodeFor).
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace slim {

/// Root of all slimtrain errors. what() is the full, user-facing message.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

/// Bad YAML, bad key, out-of-range value, bad command line. Exit code 2.
class ConfigError : public Error {
 public:
  using Error::Error;
};

/// A model file that cannot be read or run (truncated, unsupported op). Exit 2.
class ModelError : public Error {
 public:
  using Error::Error;
};

/// Tensor shapes that do not fit together.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// A data set that cannot be used: a missing, corrupt or malformed file, a
/// bad list line, an unreadable image. Exit code 2 (the user's input).
class DataError : public Error {
 public:
  using Error::Error;
};

/// A failed or timed-out collective; names the rank, peer and operation.
class CommError : public Error {
 public:
  CommError(const std::string& msg, int rank, std::string op)
      : Error(msg), rank_(rank), op_(std::move(op)) {}
  int rank() const { return rank_; }
  const std::string& op() const { return op_; }

 private:
  int rank_;
  std::string op_;
};

/// A checkpoint that cannot be written or fails validation on load.
class CheckpointError : public Error {
 public:
  using Error::Error;
};

/// The training diverged: a non-finite loss or parameter. Exit code 3; the
/// message names the iteration and the last checkpoint written before it.
class DivergenceError : public Error {
 public:
  using Error::Error;
};

/// Process exit codes (DESIGN.md §6).
constexpr int kExitOk = 0;
constexpr int kExitRuntime = 1;
constexpr int kExitUsage = 2;
/// The loss or a parameter became NaN/Inf (DivergenceError); nothing was
/// exported, no checkpoint holds the non-finite state.
constexpr int kExitDiverged = 3;
/// Checkpointed on SIGUSR1/SIGTERM; the sbatch template requeues on it.
constexpr int kExitCheckpointed = 75;

/// Maps an exception to the exit code documented in DESIGN.md §6.
int exitCodeFor(const std::exception& e);

namespace detail {

inline void appendAll(std::ostringstream&) {}
template <class T, class... Rest>
void appendAll(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  appendAll(os, rest...);
}

/// Concatenates all arguments with operator<<.
template <class... Args>
std::string str(const Args&... args) {
  std::ostringstream os;
  appendAll(os, args...);
  return os.str();
}

[[noreturn]] void throwEnforce(const char* file, int line, const char* cond,
                               const std::string& msg);

}  // namespace detail
}  // namespace slim

/// Throws slim::Error with file:line, the condition text and the message.
#define SLIM_ENFORCE(cond, ...)                                           \
  do {                                                                    \
    if (!(cond))                                                          \
      ::slim::detail::throwEnforce(__FILE__, __LINE__, #cond,             \
                                   ::slim::detail::str(__VA_ARGS__));     \
  } while (0)

#define SLIM_ENFORCE_OP_(a, b, op, ...)                                      \
  do {                                                                       \
    const auto& slim_a_ = (a);                                               \
    const auto& slim_b_ = (b);                                               \
    if (!(slim_a_ op slim_b_))                                               \
      ::slim::detail::throwEnforce(                                          \
          __FILE__, __LINE__, #a " " #op " " #b,                             \
          ::slim::detail::str("(", slim_a_, " vs ", slim_b_, ") " __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)

#define SLIM_ENFORCE_EQ(a, b, ...) SLIM_ENFORCE_OP_(a, b, ==, __VA_ARGS__)
#define SLIM_ENFORCE_NE(a, b, ...) SLIM_ENFORCE_OP_(a, b, !=, __VA_ARGS__)
#define SLIM_ENFORCE_LT(a, b, ...) SLIM_ENFORCE_OP_(a, b, <, __VA_ARGS__)
#define SLIM_ENFORCE_LE(a, b, ...) SLIM_ENFORCE_OP_(a, b, <=, __VA_ARGS__)
#define SLIM_ENFORCE_GT(a, b, ...) SLIM_ENFORCE_OP_(a, b, >, __VA_ARGS__)
#define SLIM_ENFORCE_GE(a, b, ...) SLIM_ENFORCE_OP_(a, b, >=, __VA_ARGS__)

/// Throws the given error class with a message built from the arguments.
#define SLIM_THROW(ErrorClass, ...) \
  throw ErrorClass(::slim::detail::str(__VA_ARGS__))
