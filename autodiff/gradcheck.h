// Finite-difference gradient checking in double precision, for any graph and for any registered op.
#pragma once

#include "graph/graph.h"
#include "graph/plugin.h"

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace flowgrad {

struct GradCheckReport {
  struct Entry {
    std::string value;     // the input, parameter or state checked
    double max_abs_error;  // largest |analytic - numeric| over its elements
    double max_rel_error;  // the same, relative to max(1, |numeric|)
  };
  std::vector<Entry> entries;
  double worst() const;  // largest max_rel_error
};

// Checks d loss / d x for each named value against central differences (step h) of the double-precision
// reference interpreter; `given` holds every input, parameter and state of the graph.
GradCheckReport check_graph_gradients(const Graph& graph, const std::string& loss, const std::vector<std::string>& wrt,
                                      const std::map<std::string, RefTensor>& given, double h = 1e-6);

// One row of an op's test table.
struct OpCase {
  std::string op;
  std::vector<TensorType> inputs;
  AttrMap attrs = {};
  // Inputs are drawn uniformly from [low, high]; with `away_from_zero`, |x| >= gap (keeps relu, abs away
  // from their kinks). Integer inputs (s32, u8) are drawn from [0, int_high). Integer outputs are compared
  // exactly with the reference; they are never differentiated.
  double low = -1, high = 1, gap = 0;
  int64_t int_high = 2;
  std::vector<int> no_grad = {};  // inputs not to differentiate (labels, targets, masks)
  double forward_tolerance = 1e-4;   // f32 kernel vs double reference, relative to max(1, |ref|)
  double gradient_tolerance = 1e-5;  // analytic (double) vs central differences (double)
  double kernel_gradient_tolerance = 2e-3;  // f32 backward kernels vs double analytic gradient
  std::function<void(int input, RefTensor&)> fill = {};  // custom input values, when the range is not enough
  std::string label = {};
};

// The worst error of f32 kernels against double results over the instruction-set levels this CPU runs
// (graph/isa.h), and the level it came from.
struct KernelCheck {
  double error = 0;
  std::string isa;
};

struct OpCheckResult {
  KernelCheck forward;               // f32 kernels vs reference
  double gradient_error = 0;         // analytic vs numeric, double
  KernelCheck kernel_gradient;       // f32 gradient graph vs double gradient graph
  std::string describe;              // op, label, shapes: for test failure messages
};

// Builds a one-node graph from the case, then checks its forward kernel against the reference and its
// gradient rule against central differences (both in double), and the gradient graph's f32 kernels
// against the double result. The f32 kernels run once per instruction-set level the CPU runs. The loss is sum(output_k * w_k) with fixed random weights w_k over the f32
// outputs; integer outputs (a pooling workspace) are compared exactly, opaque ones (OpDef::opaque_outputs,
// e.g. the LSTM workspace) not at all. For an op that mutates inputs (optimizer updates), the forward check
// also compares the inputs it updated in place.
OpCheckResult check_op(const OpCase& op_case, uint64_t seed = 1);

// The harness row for one of an op's registered examples, with the default tolerances.
OpCase op_case(const std::string& op, const OpExample& example);

// One line of the op harness's table: one registered example of an op through check_op.
struct OpCheckRow {
  std::string op;
  std::string example;  // the example's label, else its input shapes
  OpCheckResult result;
  bool ok = false;
  std::string note = {};  // why a row failed without a check ("no registered example")
};

// Every registered example of the op through check_op with the default tolerances; an op without examples
// is one failing row.
std::vector<OpCheckRow> check_registered_op(const std::string& op);
// The table `flowgrad gradcheck --op` prints: op, example, the forward, gradient and f32 gradient errors, and
// ok or FAIL per row.
std::string format_op_checks(const std::vector<OpCheckRow>& rows);

// The check a plugin gets on load (open_plugin's PluginCheck, graph/plugin.h): every op it registers through
// check_registered_op. Any failing row refuses the plugin with an Error(spec) that holds the whole table.
void check_plugin_ops(const LoadedPlugin& plugin);

}  // namespace flowgrad
