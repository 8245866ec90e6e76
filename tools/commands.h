// The `flowgrad` subcommands: their options (CLI11) and what each does. main() parses, then run()
// executes the chosen subcommand and maps errors to exit codes (see main_flowgrad.cpp).
#pragma once

#include "graph/tensor.h"
#include "tools/spec.h"
#include "tools/train_config.h"

#include <CLI/CLI.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flowgrad {

class Commands {
 public:
  void add_to(CLI::App& app);
  int run();

 private:
  int train();
  int eval();
  int run_graph();
  int summary();
  int dot();
  int gradcheck();
  int bench();
  int ops();
  int export_weights();
  // The latent-space commands (tools/latent_commands.cpp).
  void add_latent_commands(CLI::App& app);
  int encode();
  int decode();
  int interpolate();
  int sample();
  int manifold();
  // A spec with its trained parameters (--checkpoint or --params, required) and the batch to run at.
  struct Trained {
    Spec spec;
    TrainConfig config;
    ParamStore store;
    int64_t batch = 0;
  };
  Trained load_latent_model();
  void load_trained(const Spec& spec, const Graph& graph, ParamStore& store) const;
  void load_plugins();
  SpecOptions spec_options(int64_t batch = 0, std::optional<uint64_t> seed = {}) const {
    return {.batch = batch, .trust_plugins = trust_plugin_, .seed = seed};
  }

  CLI::App* train_ = nullptr;
  CLI::App* eval_ = nullptr;
  CLI::App* run_ = nullptr;
  CLI::App* summary_ = nullptr;
  CLI::App* dot_ = nullptr;
  CLI::App* gradcheck_ = nullptr;
  CLI::App* bench_ = nullptr;
  CLI::App* ops_ = nullptr;
  CLI::App* export_ = nullptr;
  CLI::App* encode_ = nullptr;
  CLI::App* decode_ = nullptr;
  CLI::App* interpolate_ = nullptr;
  CLI::App* sample_ = nullptr;
  CLI::App* manifold_ = nullptr;

  std::string spec_, data_, out_, resume_, checkpoint_, weights_, op_, npz_, onnx_, layout_ = "flowgrad", ops_name_;
  int64_t epochs_ = 0, batch_ = 0;
  int threads_ = -1;
  std::string isa_;  // bench --isa
  std::optional<uint64_t> seed_;
  std::vector<std::string> params_, inputs_, fetches_, onnx_outputs_, onnx_from_;
  bool grad_ = false, updates_ = false, json_ = false, profile_ = false, runner_ = false, quiet_ = false;
  // The latent-space commands' options.
  std::string split_ = "test", output_, labels_out_, codes_, at_, png_, scatter_;
  int64_t from_ = 0, to_ = 0, steps_ = 10, count_ = 64, grid_ = 15;
  bool slerp_ = false;
  std::vector<std::string> plugins_;  // --plugin, before or after the subcommand
  bool trust_plugin_ = false;
};

}  // namespace flowgrad
