// Ctrl-C and SIGTERM: a flag the handlers set, polled where stopping is safe (after a training step, after
// an external program such as Graphviz returns), and the exception that carries the stop up to main.
#pragma once

#include <exception>

namespace flowgrad {

// Thrown where a stop that Ctrl-C (SIGINT) or SIGTERM asked for is acted on; `flowgrad train` saves a
// checkpoint first, and main exits with 130.
struct Interrupted : std::exception {
  const char* what() const noexcept override { return "interrupted"; }
};

// Installs SIGINT and SIGTERM handlers that only set the stop flag (without SA_RESTART, so a blocking wait
// returns and the flag gets looked at).
void stop_training_on_signals();
// Sets the stop flag, as the handlers do.
void request_stop();
bool stop_requested();

}  // namespace flowgrad
