#include "graph/foreign_call.h"

namespace flowgrad {

int& foreign_call_depth() {
  thread_local int depth = 0;
  return depth;
}

}  // namespace flowgrad
