// Async-signal-safe stop flag.
#include "trainer/core/signals.h"

#include <csignal>

namespace slim {
namespace {
volatile std::sig_atomic_t g_stop = 0;

extern "C" void onStopSignal(int sig) { g_stop = sig; }
}  // namespace

void installStopSignalHandlers() {
  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool stopRequested() { return g_stop != 0; }
void requestStop() { g_stop = SIGUSR1; }
int stopSignal() { return static_cast<int>(g_stop); }

}  // namespace slim
