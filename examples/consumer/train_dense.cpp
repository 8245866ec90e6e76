// Trains a spec (the zoo's dense autoencoder, installed under share/flowgrad/zoo) for a few steps through
// flowgrad's C++ API, then writes a checkpoint and the weights as NPZ into a folder:
//
//   train_dense SPEC OUT_DIR [STEPS]
//
// Prints the losses. Exit status 0 on success, 1 with the error's message otherwise.
#include <flowgrad/flowgrad.h>

#include <cstdio>
#include <filesystem>
#include <string>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s SPEC OUT_DIR [STEPS]\n", argv[0]);
    return 2;
  }
  const std::string spec_path = argv[1], out = argv[2];
  const int64_t steps = argc > 3 ? std::stoll(argv[3]) : 5;
  try {
    flowgrad::Spec spec = flowgrad::load_spec(spec_path);
    flowgrad::TrainConfig config = flowgrad::read_train_config(spec);
    config.data.train_limit = steps * config.batch;  // `steps` batches: one short epoch
    config.data.test_limit = config.batch;
    flowgrad::DatasetSplits data = flowgrad::load_training_data(config.data);
    flowgrad::Trainer trainer(spec.graph, flowgrad::stage_options(config, config.stages.front()));
    const flowgrad::EpochStats epoch = trainer.run_epoch(data.train, data.test);
    std::printf("flowgrad %s: %s, %lld steps on %s: train loss %.5f, test loss %.5f\n", FLOWGRAD_VERSION,
                spec.name.c_str(), static_cast<long long>(trainer.step()), data.source.c_str(), epoch.train_loss,
                epoch.test_loss);
    std::filesystem::create_directories(out);
    flowgrad::save_checkpoint(out + "/checkpoint.fgck",
                              {.spec_hash = spec.hash, .step = static_cast<int64_t>(trainer.step()), .epoch = 1,
                               .stage_name = config.stages.front().name, .seed = config.seed},
                              trainer.params());
    flowgrad::write_weights_npz(out + "/weights.npz", spec, trainer.params());
    return 0;
  } catch (const flowgrad::Error& e) {
    std::fprintf(stderr, "train_dense: %s\n", e.what());
    return 1;
  }
}
