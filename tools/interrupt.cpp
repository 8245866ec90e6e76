#include "tools/interrupt.h"

#include <atomic>
#include <csignal>

namespace flowgrad {
namespace {

std::atomic<bool> stop_flag{false};

extern "C" void on_stop_signal(int) { stop_flag.store(true); }

}  // namespace

void stop_training_on_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void request_stop() { stop_flag.store(true); }

bool stop_requested() { return stop_flag.load(); }

}  // namespace flowgrad
