// flowgrad's C++ API in one header: build graphs (graph/, ops/, zoo/), differentiate and plan them
// (autodiff/, graph/plan.h), and do what the `flowgrad` program does, from C++:
//
//   flowgrad::Spec spec = flowgrad::load_spec("zoo/dense.yaml");        // tools/spec.h: YAML -> graph
//   flowgrad::TrainConfig config = flowgrad::read_train_config(spec);   // tools/train_config.h: `train:`
//   flowgrad::DatasetSplits data = flowgrad::load_training_data(config.data);  // tools/runner.h: IDX/NPY/CSV
//   flowgrad::Trainer trainer(spec.graph, flowgrad::stage_options(config, config.stages.front()));
//   flowgrad::EpochStats epoch = trainer.run_epoch(data.train, data.test);     // tools/trainer.h
//   flowgrad::save_checkpoint("model.fgck", {.spec_hash = spec.hash}, trainer.params());  // tools/checkpoint.h
//   flowgrad::write_weights_npz("weights.npz", spec, trainer.params());      // tools/weights.h (numpy, PyTorch)
//   flowgrad::write_onnx("model.onnx", spec, trainer.params());              // tools/onnx_export.h
//   flowgrad::train_spec(spec, config, {.out = "runs/dense"});               // tools/runner.h: a whole run folder
//   flowgrad::load_plugin("libmyops.so");  // tools/plugins.h: a plugin's ops and layers (docs/plugins.md)
//
// find_package(flowgrad) and target_link_libraries(app PRIVATE flowgrad::flowgrad) give this header, the
// libraries and their dependencies; examples/consumer is a complete outside project. Errors are
// flowgrad::Error (graph/error.h), whose kind() says what went wrong.
#pragma once

#include "flowgrad/version.h"

#include "autodiff/training.h"
#include "graph/error.h"
#include "graph/graph.h"
#include "graph/plan.h"
#include "ops/ops.h"
#include "tools/checkpoint.h"
#include "tools/dataset.h"
#include "tools/feeds.h"
#include "tools/npy.h"
#include "tools/onnx_export.h"
#include "tools/plugins.h"
#include "tools/runner.h"
#include "tools/spec.h"
#include "tools/train_config.h"
#include "tools/trainer.h"
#include "tools/weights.h"
#include "zoo/layers.h"
