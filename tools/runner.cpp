#include "tools/runner.h"

#include "tools/batches.h"
#include "tools/checkpoint.h"
#include "tools/csv.h"
#include "tools/dot_export.h"
#include "tools/feeds.h"
#include "tools/image.h"
#include "tools/npy.h"
#include "tools/plot.h"
#include "tools/progress.h"
#include "tools/report.h"
#include "tools/trainer.h"

#include <fmt/ranges.h>

#include <cmath>
#include <csignal>
#include <ctime>
#include <filesystem>
#include <sstream>

namespace flowgrad {
namespace {

std::atomic<bool> stop_requested{false};

extern "C" void on_stop_signal(int) { stop_requested.store(true); }

std::string timestamp() {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[32];
  std::strftime(text, sizeof text, "%Y%m%d-%H%M%S", &local);
  return text;
}

// --out, else the resumed checkpoint's folder, else runs/<spec name>-<timestamp>.
std::string run_folder(const Spec& spec, const RunOptions& options) {
  if (!options.out.empty()) return options.out;
  if (!options.resume.empty()) {
    std::string parent = std::filesystem::path(options.resume).parent_path().string();
    return parent.empty() ? "." : parent;
  }
  return fmt::format("runs/{}-{}", spec.name, timestamp());
}

void truncate(Dataset& data, int64_t limit) {
  if (limit <= 0 || limit >= data.count) return;
  data.count = limit;
  data.samples.resize(static_cast<size_t>(limit * data.sample_numel()));
  if (!data.bytes.empty()) data.bytes.resize(data.samples.size());
  if (!data.labels.empty()) data.labels.resize(static_cast<size_t>(limit));
}

void scale(Dataset& data, double factor) {
  if (factor == 1) return;
  for (float& v : data.samples) v = static_cast<float>(v * factor);
  data.bytes = {};  // no longer what the samples are scaled from
}

// The forward graph of one stage: parameters outside the stage's `train` patterns, or inside its
// `freeze` patterns, are frozen (no gradient, no update).
Graph stage_graph(const Graph& forward, const StageConfig& stage) {
  Graph g = forward;
  for (int id = 0; id < static_cast<int>(g.values().size()); ++id) {
    ValueInfo& v = g.info(id);
    if (v.kind != ValueKind::param || !v.trainable) continue;
    auto any = [&](const std::vector<std::string>& patterns) {
      return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return matches_pattern(p, v.name); });
    };
    if ((!stage.train.empty() && !any(stage.train)) || any(stage.freeze)) v.trainable = false;
  }
  return g;
}

// Checks that a dataset's samples fit an input: same number of values per sample (an image of 28x28 feeds
// [batch, 784], [batch, 1, 28, 28] and [batch, 28, 28] alike: all are the same row-major bytes).
void check_fits(const Dataset& data, const Graph& graph, const std::string& input, const std::string& what) {
  const Value x = const_cast<Graph&>(graph)[input];
  const int64_t per_sample = numel(x.shape()) / std::max<int64_t>(1, x.shape()[0]);
  if (per_sample != data.sample_numel())
    fail(ErrorKind::shape, "{} has samples of shape {} ({} values), but input '{}' takes {} per sample ({}): pick an input "
         "shape that matches the data", what, to_string(data.sample_shape), data.sample_numel(), input, per_sample,
         to_string(x.shape()));
}

std::string exact(double v) { return fmt::format("{:a}", v); }  // hex floats round-trip bitwise
double parse_exact(const std::map<std::string, std::string>& extra, const std::string& key) {
  auto it = extra.find(key);
  return it == extra.end() ? 0.0 : std::strtod(it->second.c_str(), nullptr);
}

// The image shape of a sample for pictures, or empty when samples are not images.
Shape image_shape(const Shape& sample) {
  if (sample.size() == 2) return sample;
  if (sample.size() == 3 && sample[0] == 1) return {sample[1], sample[2]};
  return {};
}

class Run {
 public:
  Run(const Spec& spec, TrainConfig config, const RunOptions& options)
      : spec_(spec), config_(std::move(config)), options_(options), folder_(run_folder(spec, options)),
        report_(folder_, spec.name) {
    if (options.threads >= 0) config_.threads = options.threads;
    if (options.seed) config_.seed = *options.seed;
    if (options.epochs > 0)
      for (StageConfig& s : config_.stages) s.epochs = options.epochs;
  }

  std::string run() {
    Checkpoint resume;
    if (!options_.resume.empty()) resume = load_checkpoint(options_.resume);
    DatasetSplits data = load_training_data(config_.data, options_.data_dir);
    check_fits(data.train, spec_.graph, config_.data.input, fmt::format("the data from {}", data.source));
    fit_noise_to_data(config_.data.noise, data.train);
    // Every stage's parameters and optimizer state exist from the start, so every checkpoint holds the same
    // tensors whichever stage wrote it; and a stage that cannot train fails here, before anything is written.
    for (const StageConfig& stage : config_.stages) {
      try {
        store_.materialize(build_training_graph(stage_graph(spec_.graph, stage), stage.loss, optimizer_of(stage)).graph,
                           config_.seed);
      } catch (const Error& e) {
        throw Error(e.kind(), fmt::format("stage '{}': {}", stage.name, e.message()), e.where().known() ? e.where() : stage.where);
      }
    }
    size_t first_stage = 0;
    if (!options_.resume.empty()) {
      restore_checkpoint(resume, store_);
      first_stage = static_cast<size_t>(resume.meta.stage_index);
      if (first_stage >= config_.stages.size() || config_.stages[first_stage].name != resume.meta.stage_name)
        fail(ErrorKind::io, "checkpoint '{}' stopped in stage '{}', which this spec's schedule does not have at position {}",
             options_.resume, resume.meta.stage_name, first_stage + 1);
      check_continuable(resume, data.train.count);
      restore_metrics(resume.meta.extra);
    }
    std::error_code error;
    std::filesystem::create_directories(folder_, error);
    if (error) fail(ErrorKind::io, "cannot create the run folder '{}': {}", folder_, error.message());
    write_file_atomically(folder_ + "/spec.yaml", spec_.document.text);
    write_dot(spec_.graph, folder_ + "/model.dot");
    report_.set_metric_names(spec_.metrics);
    report_.note(fmt::format("spec: {} (hash {:016x})", spec_.document.file, spec_.hash));
    report_.note(fmt::format("data: {} ({} train, {} test samples)", data.source, data.train.count, data.test.count));
    report_.note(fmt::format("batch {}, seed {}, threads {}", config_.batch, config_.seed, config_.threads));

    ProgressReporter progress(ProgressOptions{.terminal = options_.terminal});
    for (size_t k = first_stage; k < config_.stages.size(); ++k) {
      const bool resuming = !options_.resume.empty() && k == first_stage;
      train_stage(k, data, progress, resuming ? &resume.meta : nullptr);
    }
    draw_pictures(data);
    report_.write();
    return folder_;
  }

 private:
  OptimizerConfig optimizer_of(const StageConfig& stage) const { return stage.optimizer ? *stage.optimizer : config_.optimizer; }

  void train_stage(size_t index, const DatasetSplits& data, ProgressReporter& progress, const CheckpointMeta* resume) {
    const StageConfig& stage = config_.stages[index];
    Dataset derived_train, derived_test;
    const Dataset* train = &data.train;
    const Dataset* test = &data.test;
    if (!stage.data_from.empty()) {
      // The stage input, computed over the data with the parameters trained so far (in inference mode).
      derived_train = std::move(evaluator().collect(data.train, {stage.data_from}).front());
      derived_test = std::move(evaluator().collect(data.test, {stage.data_from}).front());
      train = &derived_train, test = &derived_test;
      check_fits(*train, spec_.graph, stage.input, fmt::format("output '{}'", stage.data_from));
    }
    const int64_t batches_per_epoch = (train->count + config_.batch - 1) / config_.batch;
    TrainerOptions options = stage_options(config_, stage);
    if (options.schedule.kind == LrSchedule::Kind::cosine && options.schedule.total_steps == 0)
      options.schedule.total_steps = static_cast<uint64_t>(std::max<int64_t>(1, stage.epochs * batches_per_epoch));
    options.on_step = [this, &progress](int64_t done, int64_t, double loss) {
      progress.update(done, loss);
      ++steps_;
      if (stop_requested.load() || (options_.stop_after_steps > 0 && steps_ >= options_.stop_after_steps)) throw Interrupted{};
    };
    Trainer trainer(stage_graph(spec_.graph, stage), options, &store_);
    if (resume)
      trainer.resume_at(static_cast<uint64_t>(resume->step), resume->epoch,
                        {std::stoll(resume->extra.at("batches")), parse_exact(resume->extra, "loss_sum"),
                         std::stoll(resume->extra.at("samples")), parse_exact(resume->extra, "seconds")});
    else
      trainer.reset_optimizer_state();
    while (trainer.epoch() < stage.epochs) {
      progress.epoch_start(stage.name, trainer.epoch() + 1, stage.epochs, train->count);
      EpochStats stats;
      try {
        stats = trainer.run_epoch(*train, *test);
      } catch (const Interrupted&) {
        save(index, trainer, train->count);
        report_.write();
        throw;
      }
      // Metrics are measured as `flowgrad eval` measures them: on the test split, every stage input
      // computed in the graph, whichever stage trains.
      if (!spec_.metrics.empty()) stats.metrics = evaluator().means(data.test, spec_.metrics);
      progress.epoch_end(stats);
      report_.add_epoch(stage.name, stats);
      curve_.push_back({stage.name, stats});
      save(index, trainer, train->count);
      draw_curves();
    }
  }

  // `train_samples`: the stage's training set size; with the batch and seed it fixes the batches of an
  // interrupted epoch, which a resumed run skips.
  void save(size_t stage, const Trainer& trainer, int64_t train_samples) {
    const auto& p = trainer.epoch_progress();
    CheckpointMeta meta{.spec_hash = spec_.hash, .step = static_cast<int64_t>(trainer.step()), .epoch = trainer.epoch(),
                        .stage_index = static_cast<int64_t>(stage), .stage_name = config_.stages[stage].name,
                        .seed = config_.seed};
    meta.extra = {{"batches", std::to_string(p.batches)}, {"loss_sum", exact(p.loss_sum)},
                  {"samples", std::to_string(p.samples)}, {"seconds", exact(p.seconds)}, {"metrics", metrics_text()},
                  {"batch", std::to_string(config_.batch)}, {"train_samples", std::to_string(train_samples)}};
    save_checkpoint(folder_ + "/checkpoint.fgck", meta, store_);
  }

  // A checkpoint loads whenever its tensors match the spec's (restore_checkpoint); an epoch interrupted in
  // the middle continues only with the batches it was cut from: the same batch size, seed and data size.
  void check_continuable(const Checkpoint& resume, int64_t train_samples) const {
    const auto& extra = resume.meta.extra;
    if (!extra.contains("batches") || extra.at("batches") == "0" || !extra.contains("batch")) return;
    std::vector<std::string> changed;
    if (extra.at("batch") != std::to_string(config_.batch))
      changed.push_back(fmt::format("batch {} (now {})", extra.at("batch"), config_.batch));
    if (resume.meta.seed != config_.seed) changed.push_back(fmt::format("seed {} (now {})", resume.meta.seed, config_.seed));
    const StageConfig& stage = config_.stages[static_cast<size_t>(resume.meta.stage_index)];
    if (stage.data_from.empty() && extra.contains("train_samples") && extra.at("train_samples") != std::to_string(train_samples))
      changed.push_back(fmt::format("{} training samples (now {})", extra.at("train_samples"), train_samples));
    if (!changed.empty())
      fail(ErrorKind::io, "checkpoint '{}' stopped after {} batches of epoch {} of stage '{}', which were drawn with {}; "
           "resume with those settings, or from a checkpoint at the end of an epoch",
           resume.path, extra.at("batches"), resume.meta.epoch + 1, resume.meta.stage_name, fmt::join(changed, ", "));
  }

  // The epochs so far, kept in checkpoints so a resumed run's report and curves include them: per line the
  // stage, epoch, train and test loss, seconds, samples/s, then the metrics (a resumed run whose spec has other
  // metrics shows those epochs' cells empty).
  std::string metrics_text() const {
    std::string out;
    for (const auto& [stage, s] : curve_) {
      out += fmt::format("{} {} {} {} {} {}", stage, s.epoch, exact(s.train_loss), exact(s.test_loss), exact(s.seconds),
                         exact(s.samples_per_s));
      for (double m : s.metrics) out += fmt::format(" {}", exact(m));
      out += fmt::format(" metrics:{}\n", fmt::join(spec_.metrics, ","));
    }
    return out;
  }

  void restore_metrics(const std::map<std::string, std::string>& extra) {
    auto it = extra.find("metrics");
    if (it == extra.end()) return;
    std::istringstream lines(it->second);
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream fields(line);
      std::string stage, train, test, seconds, rate, field;
      EpochStats s;
      if (!(fields >> stage >> s.epoch >> train >> test >> seconds >> rate)) continue;
      s.train_loss = std::strtod(train.c_str(), nullptr), s.test_loss = std::strtod(test.c_str(), nullptr);
      s.seconds = std::strtod(seconds.c_str(), nullptr), s.samples_per_s = std::strtod(rate.c_str(), nullptr);
      std::vector<double> values;
      std::vector<std::string> names;
      while (fields >> field) {
        if (field.starts_with("metrics:")) {
          std::istringstream list(field.substr(8));
          for (std::string name; std::getline(list, name, ',');) names.push_back(name);
        } else {
          values.push_back(std::strtod(field.c_str(), nullptr));
        }
      }
      for (const std::string& name : spec_.metrics) {  // by name: the spec may have gained or lost metrics
        auto at = std::find(names.begin(), names.end(), name);
        const size_t i = static_cast<size_t>(at - names.begin());
        s.metrics.push_back(at != names.end() && i < values.size() ? values[i] : std::nan(""));
      }
      curve_.push_back({stage, s});
      report_.add_epoch(stage, s);
    }
  }

  void draw_curves() {
    PlotSeries train{"train", {}, {}}, test{"test", {}, {}};
    for (size_t i = 0; i < curve_.size(); ++i) {
      train.x.push_back(static_cast<double>(i + 1)), train.y.push_back(curve_[i].second.train_loss);
      test.x.push_back(static_cast<double>(i + 1)), test.y.push_back(curve_[i].second.test_loss);
    }
    write_png(folder_ + "/loss.png",
              line_plot({train, test}, {.title = spec_.name + " loss", .x_label = "epoch", .y_label = "loss"}).image);
    // One small plot per metric: their scales differ (an accuracy, a KL term in nats).
    for (size_t m = 0; m < spec_.metrics.size(); ++m) {
      PlotSeries series{"test", {}, {}};
      for (size_t i = 0; i < curve_.size(); ++i)
        if (m < curve_[i].second.metrics.size())
          series.x.push_back(static_cast<double>(i + 1)), series.y.push_back(curve_[i].second.metrics[m]);
      write_png(fmt::format("{}/metric_{}.png", folder_, spec_.metrics[m]),
                line_plot({series}, {.title = fmt::format("{} {}", spec_.name, spec_.metrics[m]), .x_label = "epoch", .y_label = spec_.metrics[m]})
                    .image);
    }
  }

  // reconstructions.png: test images over their reconstructions (for a denoising run: the noisy inputs, the
  // outputs, then the clean images); latent.png: the test set's 2-D codes by label.
  void draw_pictures(const DatasetSplits& data) {
    const Shape image = image_shape(data.test.sample_shape);
    const auto& outs = spec_.graph.outputs();
    auto has_output = [&](const std::string& name) {
      return std::any_of(outs.begin(), outs.end(), [&](const auto& o) { return o.first == name; });
    };
    Evaluator& evaluate = evaluator();
    const TrainerOptions& options = evaluation_options_;
    if (!image.empty() && has_output(config_.report.reconstruction) && data.test.count > 0) {
      Dataset first = data.test;
      truncate(first, config_.report.grid_images);
      const bool noisy = options.corruption.kind != Corruption::Kind::none;
      std::vector<std::string> values = {config_.report.reconstruction};
      if (noisy) values.insert(values.begin(), options.corruption.input);
      std::vector<Dataset> shown = evaluate.collect(first, values);
      std::vector<std::span<const float>> rows;
      for (const Dataset& d : shown) rows.emplace_back(d.samples);
      rows.emplace(noisy ? rows.end() : rows.begin(), first.samples);
      if (std::all_of(shown.begin(), shown.end(), [&](const Dataset& d) { return d.sample_numel() == first.sample_numel(); }))
        write_png(folder_ + "/reconstructions.png", image_rows(rows, image));
    }
    std::string latent = config_.report.latent;
    if (latent.empty() && spec_.latent) latent = spec_.latent->mean;
    if (!latent.empty()) {
      Dataset codes = std::move(evaluate.collect(data.test, {latent}).front());
      if (codes.sample_numel() == 2)
        write_png(folder_ + "/latent.png",
                  scatter_plot(codes.samples, codes.labels, {.title = spec_.name + " latent codes (test set)"}).image);
    }
  }

  // Evaluation over the data alone (TrainerOptions from evaluation_options), made once the data is known.
  Evaluator& evaluator() {
    if (!evaluator_) {
      evaluation_options_ = evaluation_options(spec_, config_);
      evaluator_ = std::make_unique<Evaluator>(spec_.graph, store_, evaluation_options_);
    }
    return *evaluator_;
  }

  const Spec& spec_;
  TrainConfig config_;
  RunOptions options_;
  std::string folder_;
  ParamStore store_;
  RunReport report_;
  std::vector<std::pair<std::string, EpochStats>> curve_;
  int64_t steps_ = 0;  // trained by this process
  TrainerOptions evaluation_options_;
  std::unique_ptr<Evaluator> evaluator_;
};

}  // namespace

void stop_training_on_signals() {
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

void request_stop() { stop_requested.store(true); }

DatasetSplits load_training_data(const DataConfig& data, const std::string& dir_override) {
  DatasetSplits splits;
  switch (data.format) {
    case DataConfig::Format::idx:
      splits = load_idx_directory(!dir_override.empty() ? dir_override : !data.dir.empty() ? data.dir : default_fashion_mnist_dir());
      break;
    case DataConfig::Format::npy:
      splits.train = load_npy_dataset(data.train, data.train_labels);
      splits.test = load_npy_dataset(data.test, data.test_labels);
      splits.source = data.train;
      break;
    case DataConfig::Format::csv: {
      CsvOptions options;
      if (!data.label_column.empty()) {
        char* end = nullptr;
        long long index = std::strtoll(data.label_column.c_str(), &end, 10);
        if (*end == '\0') options.label_index = index;
        else options.label_name = data.label_column;
      }
      splits.train = load_csv_dataset(data.train, options);
      splits.test = load_csv_dataset(data.test, options);
      splits.source = data.train;
      break;
    }
  }
  if (data.format != DataConfig::Format::idx) {
    scale(splits.train, data.scale);
    scale(splits.test, data.scale);
  }
  truncate(splits.train, data.train_limit);
  truncate(splits.test, data.test_limit);
  return splits;
}

std::string train_spec(const Spec& spec, TrainConfig config, const RunOptions& options) {
  return Run(spec, std::move(config), options).run();
}

}  // namespace flowgrad
