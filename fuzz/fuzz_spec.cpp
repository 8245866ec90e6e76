// The spec loader: YAML parsing within its bounds, the graph built with shape inference under the size rule,
// the train section, the summary, the inference form and the training graph of the first stage. A spec may
// be refused with flowgrad::Error; any other exception, a crash or a sanitizer report is a bug.
#include "autodiff/training.h"
#include "graph/error.h"
#include "tools/spec.h"
#include "tools/train_config.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace flowgrad;
  try {
    Spec spec = parse_spec(std::string(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
    (void)format_summary(spec);
    (void)spec.graph.for_inference();
    TrainConfig config = read_train_config(spec);
    const StageConfig& stage = config.stages.front();
    (void)build_training_graph(spec.graph, stage.loss, stage.optimizer ? *stage.optimizer : config.optimizer);
  } catch (const Error&) {
  }
  return 0;
}
