// What a spec's graph is fed, stage by stage and in evaluation: the data's samples, their labels and a noisy
// copy, and the stage inputs of a multi-stage schedule, which training feeds from an earlier stage's output
// (data_from) computed over the data, and evaluation computes in the graph itself. So every loss and metric
// can be evaluated on the data alone, whatever stage trained it (docs/spec.md, "Multi-stage schedules").
#pragma once

#include "tools/npy.h"
#include "tools/train_config.h"
#include "tools/trainer.h"

#include <string>
#include <utility>
#include <vector>

namespace flowgrad {

// The options stage `stage` trains with: its loss and optimizer, the schedule, the data's input (or the
// stage's data_from input), labels and noise (with the run's seed), and for its test loss every other stage
// input computed in the graph (TrainerOptions::bindings). A cosine schedule of `steps: 0` spans the stage's
// epochs x `batches_per_epoch`.
TrainerOptions stage_options(const TrainConfig& config, const StageConfig& stage, int64_t batches_per_epoch = 1);
// The options for evaluating over the data alone (metrics after each epoch, eval, pictures, a stage's
// data_from): the data's input, labels and noise, every stage input computed in the graph, the spec's
// metrics, the first stage's loss.
TrainerOptions evaluation_options(const Spec& spec, const TrainConfig& config);

// `graph` with each (input, value) of `bindings` computed instead of fed (Graph::with_inputs_bound); a
// value of another shape with as many f32 elements per sample is reshaped first, as the data loader
// reshapes samples. Errors name the input and the value.
Graph with_stage_inputs_bound(const Graph& graph, const std::vector<std::pair<std::string, std::string>>& bindings);

// The inputs that computing `values` reads, in graph order.
std::vector<std::string> inputs_read(const Graph& graph, const std::vector<std::string>& values);

// For read_train_config: collects config.stage_inputs and checks, at each stage's position or the metric's,
// that stages feed a stage input from one output of as many values per sample (not computed from the input
// itself), that each stage's loss reads only what the stage feeds, and that every metric is computable
// from the data.
void check_feeds(const Spec& spec, TrainConfig& config);

// Whether a value changes with the batch size: an input declared with `batch`, or a value computed from one.
bool is_batched(const Graph& graph, const std::string& name);

// A value fed from an NPY file (flowgrad run --input, eval --input): any input, or any computed value in place
// of its producer. The array is converted to the value's dtype (to_tensor) and, with `rows` samples for a
// batched value, reshaped to its shape as the data loader reshapes samples (28x28 images feed [batch, 784]).
// Throws Error(spec) for an unknown name or a parameter, Error(shape) when the sizes disagree, naming
// `option` (e.g. "--input code=z.npy").
Tensor fed_tensor(Graph& graph, const std::string& name, const NpyArray& array, int64_t rows, const std::string& option);

// The training samples' range [min, max] for noise whose range comes from the data (Corruption::low, high).
void fit_noise_to_data(Corruption& noise, const Dataset& train);

}  // namespace flowgrad
