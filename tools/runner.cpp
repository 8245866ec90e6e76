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

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <fmt/ranges.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <sstream>

namespace flowgrad {
namespace {

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

// `scale` is for float data. Bytes (u8 NPY, IDX) are already divided by 255 when loaded, in train, eval and
// run --input alike, so scaling them again is refused rather than done twice.
void scale(Dataset& data, double factor, const std::string& file) {
  if (factor == 1) return;
  if (!data.bytes.empty())
    fail(ErrorKind::spec, "'{}' holds u8 samples, which flowgrad divides by 255 into [0, 1] itself; remove `scale: {}` "
         "from train.data (it is for float data)", file, factor);
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

std::string exact(double v) { return fmt::format("{:a}", v); }  // hex floats round-trip bitwise

// Holds an exclusive lock on a run folder while a run writes into it: a second `flowgrad train` into the
// same folder is refused instead of interleaving its checkpoints and reports with ours. flock on the
// folder itself leaves no lock file behind, and the kernel drops the lock when the process dies.
class FolderLock {
 public:
  explicit FolderLock(const std::string& folder) : fd_(::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)) {
    if (fd_ < 0) fail(ErrorKind::io, "cannot open the run folder '{}': {}", folder, std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      ::close(fd_);
      if (error == EWOULDBLOCK)
        fail(ErrorKind::io, "the run folder '{}' is in use by another `flowgrad train`; wait for it or pass another --out",
             folder);
      fail(ErrorKind::io, "cannot lock the run folder '{}': {}", folder, std::strerror(error));
    }
  }
  ~FolderLock() { ::close(fd_); }
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_;
};

// The image shape of a sample for pictures, or empty when samples are not images.
Shape image_shape(const Shape& sample) {
  if (sample.size() == 2) return sample;
  if (sample.size() == 3 && sample[0] == 1) return {sample[1], sample[2]};
  return {};
}

// How loss.png names each stage's loss: its name and the op that computes it ("loss, mse").
std::map<std::string, std::string> loss_names(const Spec& spec, const std::vector<StageConfig>& stages) {
  std::map<std::string, std::string> names;
  for (const StageConfig& stage : stages) {
    std::string op = "a sum of terms";
    for (const auto& [name, id] : spec.graph.outputs())
      if (name == stage.loss && spec.graph.info(id).kind == ValueKind::node) {
        const std::string& producer = spec.graph.nodes()[static_cast<size_t>(spec.graph.info(id).producer)].op->name;
        if (producer != "add") op = producer;
      }
    names[stage.name] = fmt::format("{}, {}", stage.loss, op);
  }
  return names;
}

class Run {
 public:
  Run(const Spec& spec, TrainConfig config, const RunOptions& options)
      : spec_(spec), config_(std::move(config)), options_(options), folder_(run_folder(spec, options)),
        report_(folder_, spec) {
    if (options.threads >= 0) config_.threads = options.threads;
    if (options.seed) config_.seed = *options.seed;
    if (options.epochs > 0)
      for (StageConfig& s : config_.stages) s.epochs = options.epochs;
  }

  // Nothing is written before the data is loaded and checked, the checkpoint to resume is verified and the
  // first stage's plans are made (which is where a model too large for memory fails): bad input leaves no
  // run folder behind.
  std::string run() {
    Checkpoint resume;
    if (!options_.resume.empty()) resume = load_checkpoint(options_.resume);
    DatasetSplits data = load_training_data(config_.data, options_.data_dir);
    // Every stage reads the data through its input, directly or to compute a data_from output.
    for (const Dataset* split : {&data.train, &data.test}) {
      const std::string what = fmt::format("the {} samples of '{}'", split == &data.train ? "train" : "test", split->source);
      check_samples_fit(*split, spec_.graph, config_.data.input, what);
      if (config_.data.noise.kind != Corruption::Kind::none)
        check_samples_fit(*split, spec_.graph, config_.data.noise.input, what);
    }
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
             options_.resume, resume.meta.stage_name, resume.meta.stage_index + 1);
      check_continuable(resume, data.train.count);
      report_.restore_steps(static_cast<uint64_t>(resume.meta.step));
      restore_metrics(resume);
    }
    report_.set_metric_names(spec_.metrics);
    report_.note(fmt::format("spec: {} (hash {:016x})", spec_.document.file, spec_.hash));
    report_.note(fmt::format("data: {} ({} train, {} test samples)", data.source, data.train.count, data.test.count));
    report_.note(fmt::format("batch {}, seed {}, threads {}", config_.batch, config_.seed,
                             config_.threads > 0 ? std::to_string(config_.threads) : "0 (every core)"));
    if (config_.early_stopping.patience > 0)
      report_.note(fmt::format("early stopping: patience {} epochs, min_delta {:g}", config_.early_stopping.patience,
                               config_.early_stopping.min_delta));

    ProgressReporter progress(ProgressOptions{.terminal = options_.terminal, .quiet = options_.quiet});
    for (size_t k = first_stage; k < config_.stages.size(); ++k) {
      const bool resuming = !options_.resume.empty() && k == first_stage;
      train_stage(k, data, progress, resuming ? &resume : nullptr);
    }
    draw_pictures(data);
    report_.write();
    return folder_;
  }

 private:
  const OptimizerConfig& optimizer_of(const StageConfig& stage) const { return stage_optimizer(config_, stage); }

  // The stage's best test loss so far and the epochs since it last improved by more than min_delta.
  struct Best {
    double loss = std::numeric_limits<double>::infinity();
    int64_t stale = 0;
  };

  // Once, before the first epoch: the folder, locked against a second run, with the spec and the graph.
  void prepare_folder() {
    if (folder_lock_) return;
    std::error_code error;
    std::filesystem::create_directories(folder_, error);
    if (error) fail(ErrorKind::io, "cannot create the run folder '{}': {}", folder_, error.message());
    folder_lock_ = std::make_unique<FolderLock>(folder_);
    write_file_atomically(folder_ + "/spec.yaml", spec_.document.text);
    write_dot(spec_.graph, folder_ + "/model.dot");
  }

  void train_stage(size_t index, const DatasetSplits& data, ProgressReporter& progress, const Checkpoint* resume) {
    const StageConfig& stage = config_.stages[index];
    Dataset derived_train, derived_test;
    const Dataset* train = &data.train;
    const Dataset* test = &data.test;
    if (!stage.data_from.empty()) {
      // The stage input, computed over the data with the parameters trained so far (in inference mode).
      derived_train = std::move(evaluator().collect(data.train, {stage.data_from}).front());
      derived_test = std::move(evaluator().collect(data.test, {stage.data_from}).front());
      train = &derived_train, test = &derived_test;
      check_samples_fit(*train, spec_.graph, stage.input, fmt::format("output '{}'", stage.data_from));
    }
    TrainerOptions options = stage_options(config_, stage, (train->count + config_.batch - 1) / config_.batch);
    const Trainer* current = nullptr;  // set once constructed: steps are logged with the trainer's position
    options.on_step = [this, &progress, &current, &stage](int64_t done, int64_t, double loss) {
      progress.update(done, loss);
      const uint64_t step = current->step() - 1;
      report_.add_step({stage.name, current->epoch() + 1, step, loss, current_lr_(step)});
      ++steps_;
      if (stop_requested() || (options_.stop_after_steps > 0 && steps_ >= options_.stop_after_steps)) throw Interrupted{};
    };
    current_lr_ = [schedule = options.schedule](uint64_t step) { return schedule.at(step); };
    Trainer trainer(stage_graph(spec_.graph, stage), options, &store_);
    current = &trainer;
    Best best;
    if (resume) {
      trainer.resume_at(static_cast<uint64_t>(resume->meta.step), resume->meta.epoch,
                        {resume->count("batches"), resume->number("loss_sum"), resume->count("samples"),
                         resume->number("seconds")});
      if (resume->meta.extra.count("best_test_loss"))
        best = {resume->number("best_test_loss"), resume->count("stale_epochs")};
    } else {
      trainer.reset_optimizer_state();
    }
    try {
      prepare_folder();
    } catch (const Interrupted&) {  // Ctrl-C while Graphviz renders: the run so far is saved like any other stop
      save(index, trainer, best, train->count);
      report_.write();
      throw;
    }
    const EarlyStopping& stopping = config_.early_stopping;
    while (trainer.epoch() < stage.epochs && !(stopping.patience > 0 && best.stale >= stopping.patience)) {
      progress.epoch_start(stage.name, trainer.epoch() + 1, stage.epochs, train->count, config_.batch);
      EpochStats stats;
      try {
        stats = trainer.run_epoch(*train, *test);
      } catch (const Interrupted&) {
        save(index, trainer, best, train->count);
        report_.write();
        throw;
      }
      // Metrics are measured as `flowgrad eval` measures them: on the test split, every stage input
      // computed in the graph, whichever stage trains.
      if (!spec_.metrics.empty()) stats.metrics = evaluator().means(data.test, spec_.metrics);
      progress.epoch_end(stats);
      const bool improved = stats.test_loss < best.loss;
      best.stale = stats.test_loss < best.loss - stopping.min_delta ? 0 : best.stale + 1;
      if (improved) best.loss = stats.test_loss;
      report_.add_epoch(stage.name, stats);
      save(index, trainer, best, train->count);
      if (improved) save(index, trainer, best, train->count, "best.fgck");  // beside the last, as Keras' save_best_only
      draw_curves();
      if (stopping.patience > 0 && best.stale >= stopping.patience && trainer.epoch() < stage.epochs)
        progress.message(fmt::format("{}: early stopping after epoch {}: the test loss has not improved by more than {:g} "
                                     "for {} epochs; the best, {:.5f}, is in best.fgck",
                                     stage.name, trainer.epoch(), stopping.min_delta, best.stale, best.loss));
    }
  }

  // `train_samples`: the stage's training set size; with the batch and seed it fixes the batches of an
  // interrupted epoch, which a resumed run skips.
  void save(size_t stage, const Trainer& trainer, const Best& best, int64_t train_samples,
            const std::string& file = "checkpoint.fgck") {
    const auto& p = trainer.epoch_progress();
    CheckpointMeta meta{.spec_hash = spec_.hash, .step = static_cast<int64_t>(trainer.step()), .epoch = trainer.epoch(),
                        .stage_index = static_cast<int64_t>(stage), .stage_name = config_.stages[stage].name,
                        .seed = config_.seed};
    meta.extra = {{"batches", std::to_string(p.batches)}, {"loss_sum", exact(p.loss_sum)},
                  {"samples", std::to_string(p.samples)}, {"seconds", exact(p.seconds)}, {"metrics", metrics_text()},
                  {"best_test_loss", exact(best.loss)}, {"stale_epochs", std::to_string(best.stale)},
                  {"batch", std::to_string(config_.batch)}, {"train_samples", std::to_string(train_samples)}};
    save_checkpoint(folder_ + "/" + file, meta, store_);
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
    for (const auto& [stage, s] : report_.epochs()) {
      out += fmt::format("{} {} {} {} {} {}", stage, s.epoch, exact(s.train_loss), exact(s.test_loss), exact(s.seconds),
                         exact(s.samples_per_s));
      for (double m : s.metrics) out += fmt::format(" {}", exact(m));
      out += fmt::format(" metrics:{}\n", fmt::join(spec_.metrics, ","));
    }
    return out;
  }

  // The epochs before the checkpoint, for the report and the curve. They are recorded without rewriting the
  // report per epoch (which made resuming quadratic in the epochs); the next trained epoch writes it.
  void restore_metrics(const Checkpoint& checkpoint) {
    auto it = checkpoint.meta.extra.find("metrics");
    if (it == checkpoint.meta.extra.end()) return;
    std::istringstream lines(it->second);
    std::string line;
    for (int number = 1; std::getline(lines, line); ++number) {
      std::istringstream fields(line);
      std::string stage, train, test, seconds, rate, field;
      EpochStats s;
      char* ends[4] = {};
      bool read = static_cast<bool>(fields >> stage >> s.epoch >> train >> test >> seconds >> rate);
      if (read) {
        s.train_loss = std::strtod(train.c_str(), &ends[0]), s.test_loss = std::strtod(test.c_str(), &ends[1]);
        s.seconds = std::strtod(seconds.c_str(), &ends[2]), s.samples_per_s = std::strtod(rate.c_str(), &ends[3]);
      }
      // Then the metrics' values and their names ("metrics:a,b"), which a resumed run matches by name.
      std::vector<double> values;
      std::vector<std::string> names;
      while (read && fields >> field) {
        if (field.starts_with("metrics:")) {
          std::istringstream list(field.substr(8));
          for (std::string name; std::getline(list, name, ',');) names.push_back(name);
        } else {
          char* end = nullptr;
          values.push_back(std::strtod(field.c_str(), &end));
          read = *end == 0;
        }
      }
      if (!read || s.epoch < 1 || *ends[0] || *ends[1] || *ends[2] || *ends[3])
        fail(ErrorKind::io, "checkpoint '{}' is corrupt: line {} of its metrics is '{}', not 'stage epoch train test "
             "seconds samples_per_s [metric values] [metrics:names]'", checkpoint.path, number, line);
      for (const std::string& name : spec_.metrics) {  // by name: the spec may have gained or lost metrics
        auto at = std::find(names.begin(), names.end(), name);
        const size_t i = static_cast<size_t>(at - names.begin());
        s.metrics.push_back(at != names.end() && i < values.size() ? values[i] : std::nan(""));
      }
      report_.add_epoch(stage, s, /*write_files=*/false);
    }
  }

  // loss.png (the stages' train and test losses per epoch, and the steps'), and one small plot per metric:
  // their scales differ (an accuracy, a KL term in nats).
  void draw_curves() {
    const auto& epochs = report_.epochs();
    draw_loss_curves(folder_ + "/loss.png", spec_.name + " loss", loss_names(spec_, config_.stages), epochs, report_.steps());
    for (size_t m = 0; m < spec_.metrics.size(); ++m) {
      PlotSeries series{.name = "test"};
      for (size_t i = 0; i < epochs.size(); ++i)
        if (m < epochs[i].second.metrics.size())
          series.x.push_back(static_cast<double>(i + 1)), series.y.push_back(epochs[i].second.metrics[m]);
      line_plot(fmt::format("{}/metric_{}.png", folder_, spec_.metrics[m]), {series},
                {.title = fmt::format("{}: test {}", spec_.name, spec_.metrics[m]), .x_label = "epoch",
                 .y_label = spec_.metrics[m], .x_from = 0});
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
    const std::vector<std::string>& classes = config_.report.classes;
    Evaluator& evaluate = evaluator();
    const TrainerOptions& options = evaluation_options_;
    if (!image.empty() && has_output(config_.report.reconstruction) && data.test.count > 0) {
      Dataset first = data.test;
      truncate(first, config_.report.grid_images);
      const bool noisy = options.corruption.kind != Corruption::Kind::none;
      std::vector<std::string> values = {config_.report.reconstruction};
      if (noisy) values.insert(values.begin(), options.corruption.input);
      std::vector<Dataset> shown = evaluate.collect(first, values);
      std::vector<ImageRow> rows;
      for (size_t i = 0; i < shown.size(); ++i)
        rows.push_back({noisy && i == 0 ? "noisy input" : "reconstruction", shown[i].samples});
      rows.insert(noisy ? rows.end() : rows.begin(), ImageRow{noisy ? "clean image" : "original", first.samples});
      if (std::all_of(shown.begin(), shown.end(), [&](const Dataset& d) { return d.sample_numel() == first.sample_numel(); }))
        image_rows_figure(folder_ + "/reconstructions.png", rows, image, first.labels, classes);
    }
    std::string latent = config_.report.latent;
    if (latent.empty() && spec_.latent) latent = spec_.latent->mean;
    if (!latent.empty()) {
      Dataset codes = std::move(evaluate.collect(data.test, {latent}).front());
      if (codes.sample_numel() == 2)
        scatter_plot(folder_ + "/latent.png", codes.samples, codes.labels, classes,
                     {.width = 900, .height = 640, .title = fmt::format("{}: '{}' of the {} test samples", spec_.name, latent,
                                                                        codes.count),
                      .x_label = latent + "[0]", .y_label = latent + "[1]"});
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
  std::function<double(uint64_t)> current_lr_;  // the stage's learning rate at a step, for steps.csv
  int64_t steps_ = 0;  // trained by this process
  std::unique_ptr<FolderLock> folder_lock_;  // set once the folder is written to
  TrainerOptions evaluation_options_;
  std::unique_ptr<Evaluator> evaluator_;
};

}  // namespace

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
      check_same_samples(splits, data.train, data.test);
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
      check_same_samples(splits, data.train, data.test);
      break;
    }
  }
  if (data.format != DataConfig::Format::idx) {
    scale(splits.train, data.scale, data.train);
    scale(splits.test, data.scale, data.test);
  }
  truncate(splits.train, data.train_limit);
  truncate(splits.test, data.test_limit);
  return splits;
}

std::string train_spec(const Spec& spec, TrainConfig config, const RunOptions& options) {
  return Run(spec, std::move(config), options).run();
}

}  // namespace flowgrad
