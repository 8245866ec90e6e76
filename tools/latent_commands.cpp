// The latent-space subcommands of `flowgrad`: encode, decode, interpolate, sample and manifold (docs/cli.md).
// Each runs the spec's graph in inference mode with trained parameters; codes are fed in place of what
// computes them (Graph::cut_at), so one spec serves as encoder, decoder and autoencoder.
#include "tools/commands.h"

#include "graph/error.h"
#include "tools/atomic_file.h"
#include "tools/checkpoint.h"
#include "tools/feeds.h"
#include "tools/latent.h"
#include "tools/npy.h"
#include "tools/plot.h"
#include "tools/runner.h"
#include "tools/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <numeric>

namespace flowgrad {
namespace {

constexpr int64_t kGridImages = 100;  // decode --png draws the first 100 codes' images

// Columns of a roughly square grid of `count` images.
int64_t grid_columns(int64_t count) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(count)))));
}

// `count` decoded images as a grid of rows (`label` on the first) in `path`.
void draw_grid(const std::string& path, const Tensor& images, const std::string& label, const std::string& what) {
  const int64_t count = images.shape()[0];
  const Shape image = picture_shape(Shape(images.shape().begin() + 1, images.shape().end()), what);
  const int64_t columns = grid_columns(count);
  const std::vector<std::vector<float>> grid = grid_rows(images.span(), count, numel(image), columns);
  std::vector<ImageRow> rows;
  for (const std::vector<float>& row : grid) rows.push_back({rows.empty() ? label : "", row});
  image_rows_figure(path, rows, image);
}

// The caption of test image `index`: its class's name (or label).
std::string class_name(const TrainConfig& config, const Dataset& data, int64_t index) {
  if (data.labels.empty()) return fmt::format("test {}", index);
  const int32_t label = data.labels[static_cast<size_t>(index)];
  const auto& classes = config.report.classes;
  return label >= 0 && static_cast<size_t>(label) < classes.size() ? classes[static_cast<size_t>(label)] : fmt::format("label {}", label);
}

// The samples of `data` at `indices`, a dataset of their own.
Dataset slice(const Dataset& data, const std::vector<int64_t>& indices) {
  Dataset part{.sample_shape = data.sample_shape, .count = static_cast<int64_t>(indices.size()), .source = data.source};
  const auto n = static_cast<size_t>(data.sample_numel());
  for (int64_t index : indices) {
    const auto i = static_cast<size_t>(index);
    part.samples.insert(part.samples.end(), data.samples.begin() + static_cast<std::ptrdiff_t>(i * n),
                        data.samples.begin() + static_cast<std::ptrdiff_t>((i + 1) * n));
    if (!data.labels.empty()) part.labels.push_back(data.labels[i]);
  }
  return part;
}

}  // namespace

void Commands::add_latent_commands(CLI::App& app) {
  auto spec_arg = [this](CLI::App* cmd) { cmd->add_option("spec", spec_, "the model spec (YAML)")->required()->check(CLI::ExistingFile); };
  auto trained = [this](CLI::App* cmd) {
    auto* checkpoint = cmd->add_option("--checkpoint", checkpoint_, "trained parameters (a checkpoint, .fgck)")->check(CLI::ExistingFile);
    auto* params = cmd->add_option("--params", weights_, "trained parameters as NPZ (flowgrad's or PyTorch's layout)")
                       ->check(CLI::ExistingFile);
    checkpoint->excludes(params);
  };
  const CLI::Range threads_range(0, kMaxThreads), size_range(int64_t{1}, kMaxElements);
  auto common = [&](CLI::App* cmd) {
    spec_arg(cmd);
    trained(cmd);
    cmd->add_option("--threads", threads_, "threads (0: every core)")->check(threads_range);
  };
  const char* at_help = "the value codes are fed to (default: the spec's latent value, else the output 'code')";
  const char* output_help = "the value decoded (default: reconstruction)";

  encode_ = app.add_subcommand("encode", "a dataset split's codes (and labels) as NPY, in inference mode");
  common(encode_);
  encode_->add_option("--data", data_, "directory with the four IDX files");
  encode_->add_option("--split", split_, "the split encoded: test or train")->check(CLI::IsMember({"test", "train"}));
  encode_->add_option("--output", output_, "the value written (default: the spec's latent mean, else the output 'code')");
  encode_->add_option("--out", out_, "the codes, [samples, units...] (NPY)")->required();
  encode_->add_option("--labels", labels_out_, "also write the samples' labels, int32 [samples] (NPY)");
  encode_->add_option("--batch", batch_, "samples per batch (default: the spec's)")->check(size_range);

  decode_ = app.add_subcommand("decode", "decode codes from an NPY file into images (NPY, and a PNG grid)");
  common(decode_);
  decode_->add_option("--codes", codes_, "codes, one row per sample (NPY, e.g. from encode)")->required()->check(CLI::ExistingFile);
  decode_->add_option("--at", at_, at_help);
  decode_->add_option("--output", output_, output_help);
  decode_->add_option("--out", out_, "the decoded values, [samples, ...] (NPY)");
  decode_->add_option("--png", png_, "a grid of the decoded images (.png, .svg or .pdf)");
  decode_->add_option("--batch", batch_, "codes per batch (default: the spec's)")->check(size_range);

  interpolate_ = app.add_subcommand("interpolate", "decode the path between two test images' codes into a strip");
  common(interpolate_);
  interpolate_->add_option("--data", data_, "directory with the four IDX files");
  interpolate_->add_option("--from", from_, "the first test image's index")->required()->check(CLI::NonNegativeNumber);
  interpolate_->add_option("--to", to_, "the last test image's index")->required()->check(CLI::NonNegativeNumber);
  interpolate_->add_option("--steps", steps_, "decoded codes on the path, both ends included (default 10)")->check(CLI::Range(2, 1000));
  interpolate_->add_flag("--slerp", slerp_, "spherical interpolation instead of linear");
  interpolate_->add_option("--at", at_, at_help);
  interpolate_->add_option("--output", output_, output_help);
  interpolate_->add_option("--png", png_, "the strip: first image, decoded path, last image")->required();
  interpolate_->add_option("--out", out_, "also write the decoded path, [steps, ...] (NPY)");

  sample_ = app.add_subcommand("sample", "decode draws from the spec's latent prior (a VAE's standard normal)");
  common(sample_);
  sample_->add_option("--n", count_, "how many draws (default 64)")->check(CLI::Range(1, 100000));
  sample_->add_option("--seed", seed_, "the draws' seed (default 1)");
  sample_->add_option("--output", output_, output_help);
  sample_->add_option("--png", png_, "a grid of the decoded samples");
  sample_->add_option("--out", out_, "the decoded samples, [n, ...] (NPY)");

  manifold_ = app.add_subcommand("manifold", "decode a grid over a 2-D code's plane, beside the test codes' scatter");
  common(manifold_);
  manifold_->add_option("--data", data_, "directory with the four IDX files");
  manifold_->add_option("--n", grid_, "images per side of the grid (default 15)")->check(CLI::Range(2, 100));
  manifold_->add_option("--at", at_, at_help);
  manifold_->add_option("--output", output_, output_help);
  manifold_->add_option("--png", png_, "the grid of decoded images")->required();
  manifold_->add_option("--scatter", scatter_, "the test codes' scatter (default: beside --png, '-codes' added to its name)");
}

Commands::Trained Commands::load_latent_model() {
  const std::string command = encode_->parsed() ? "encode" : decode_->parsed() ? "decode" : interpolate_->parsed() ? "interpolate"
                              : sample_->parsed() ? "sample" : "manifold";
  if (checkpoint_.empty() && weights_.empty())
    fail(ErrorKind::spec, "{} needs trained parameters: --checkpoint or --params", command);
  std::optional<uint64_t> seed;  // a checkpoint's seed is the one the run's random ops drew from
  if (!checkpoint_.empty()) seed = load_checkpoint(checkpoint_).meta.seed;
  Trained model{.spec = load_spec(spec_, spec_options(0, seed))};
  model.config = read_train_config(model.spec);
  if (threads_ >= 0) model.config.threads = threads_;
  if (seed) model.config.seed = *seed;
  model.store.materialize(model.spec.graph, model.config.seed);
  load_trained(model.spec, model.spec.graph, model.store);
  model.batch = batch_ > 0 ? batch_ : evaluation_options(model.spec, model.config).batch;
  return model;
}

int Commands::encode() {
  Trained model = load_latent_model();
  const std::string value = encoded_value(model.spec, output_, "--output");
  DatasetSplits data = load_training_data(model.config.data, data_);
  const Dataset& split = split_ == "train" ? data.train : data.test;
  TrainerOptions options = evaluation_options(model.spec, model.config);
  options.batch = model.batch;
  const Dataset codes = std::move(Evaluator(model.spec.graph, model.store, options).collect(split, {value}).front());
  Shape shape = codes.sample_shape;
  shape.insert(shape.begin(), codes.count);
  write_npy(resolve_named_output(out_), Tensor(shape, codes.samples));
  if (!labels_out_.empty()) {
    if (split.labels.empty()) fail(ErrorKind::spec, "--labels: the {} split '{}' has no labels", split_, split.source);
    Tensor labels(TensorType{{split.count}, DType::s32});
    std::copy(split.labels.begin(), split.labels.end(), static_cast<int32_t*>(labels.data()));
    write_npy(resolve_named_output(labels_out_), labels);
  }
  fmt::print(stderr, "wrote '{}' of the {} {} samples, {}, to {}{}\n", value, codes.count, split_, to_string(shape), out_,
             labels_out_.empty() ? "" : " and their labels to " + labels_out_);
  return 0;
}

int Commands::decode() {
  if (out_.empty() && png_.empty()) fail(ErrorKind::spec, "decode writes --out FILE.npy, --png FILE.png or both; neither was given");
  Trained model = load_latent_model();
  const std::string at = decoded_value(model.spec, at_, "--at");
  const std::string output = output_.empty() ? "reconstruction" : output_;
  const NpyArray array = read_npy(codes_);
  check_tensor_shape(array);
  const Tensor codes = to_tensor(array, DType::f32);
  const Tensor images = decode_codes(model.spec.graph, model.store, at, output, codes, model.batch, model.config.threads);
  if (!out_.empty()) write_npy(resolve_named_output(out_), images);
  if (!png_.empty()) {  // a picture of at most kGridImages: 10,000 decoded test images would be an 8 MB PNG
    const int64_t shown = std::min(images.shape()[0], kGridImages);
    Shape shape = images.shape();
    shape[0] = shown;
    draw_grid(resolve_named_output(png_), Tensor(shape, images.span().first(static_cast<size_t>(images.numel() / images.shape()[0] * shown))),
              shown < images.shape()[0] ? fmt::format("first {}", shown) : "decoded", fmt::format("'{}'", output));
  }
  fmt::print(stderr, "decoded {} codes at '{}' into '{}' {}\n", images.shape()[0], at, output, to_string(images.shape()));
  return 0;
}

int Commands::interpolate() {
  Trained model = load_latent_model();
  const std::string at = decoded_value(model.spec, at_, "--at");
  const std::string encoded = at_.empty() ? encoded_value(model.spec, "", "--at") : at_;  // --at: the codes are read there too
  const std::string output = output_.empty() ? "reconstruction" : output_;
  DatasetSplits data = load_training_data(model.config.data, data_);
  for (int64_t index : {from_, to_})
    if (index >= data.test.count)
      fail(ErrorKind::spec, "test image {} does not exist: the test split '{}' has {} (0 to {})", index, data.test.source,
           data.test.count, data.test.count - 1);
  const Dataset ends = slice(data.test, {from_, to_});
  TrainerOptions options = evaluation_options(model.spec, model.config);
  const Dataset codes = std::move(Evaluator(model.spec.graph, model.store, options).collect(ends, {encoded}).front());
  const auto units = static_cast<size_t>(codes.sample_numel());
  const std::vector<float> first(codes.samples.begin(), codes.samples.begin() + static_cast<std::ptrdiff_t>(units));
  const std::vector<float> last(codes.samples.begin() + static_cast<std::ptrdiff_t>(units), codes.samples.end());
  std::vector<float> path;
  for (const std::vector<float>& code : interpolate_codes(first, last, steps_, slerp_)) path.insert(path.end(), code.begin(), code.end());
  const Tensor images = decode_codes(model.spec.graph, model.store, at, output,
                                     Tensor({steps_, static_cast<int64_t>(units)}, path), steps_, model.config.threads);
  const Shape image = picture_shape(Shape(images.shape().begin() + 1, images.shape().end()), fmt::format("'{}'", output));
  if (numel(image) != ends.sample_numel())
    fail(ErrorKind::shape, "'{}' holds {} values per sample, the test images {}: the strip shows them side by side", output,
         numel(image), ends.sample_numel());
  std::vector<float> strip(ends.samples.begin(), ends.samples.begin() + ends.sample_numel());
  strip.insert(strip.end(), images.span().begin(), images.span().end());
  strip.insert(strip.end(), ends.samples.begin() + ends.sample_numel(), ends.samples.end());
  // Each column captioned: the end images' classes, and t along the path.
  std::vector<std::string> captions = {class_name(model.config, data.test, from_)};
  for (int64_t s = 0; s < steps_; ++s) captions.push_back(fmt::format("t = {:.2f}", static_cast<double>(s) / static_cast<double>(steps_ - 1)));
  captions.push_back(class_name(model.config, data.test, to_));
  std::vector<int32_t> columns(captions.size());
  std::iota(columns.begin(), columns.end(), 0);
  image_rows_figure(resolve_named_output(png_), {{fmt::format("#{} to #{}{}", from_, to_, slerp_ ? ", slerp" : ""), strip}}, image,
                    columns, captions);
  if (!out_.empty()) write_npy(resolve_named_output(out_), images);
  fmt::print(stderr, "wrote {}: test image {}, {} codes decoded at '{}' ({}), test image {}\n", png_, from_, steps_, at,
             slerp_ ? "slerp" : "linear", to_);
  return 0;
}

int Commands::sample() {
  if (out_.empty() && png_.empty()) fail(ErrorKind::spec, "sample writes --png FILE.png, --out FILE.npy or both; neither was given");
  Trained model = load_latent_model();
  const LatentSpec* latent = model.spec.latent ? &*model.spec.latent : nullptr;
  if (!latent || latent->prior == LatentSpec::Prior::none)
    fail(ErrorKind::spec, "'{}' declares no prior to sample its code from: sampling needs `latent: {{value: z, prior: normal}}` "
         "in the spec, as a VAE's (docs/spec.md)", model.spec.name);
  const Shape& code = model.spec.graph[latent->value].shape();
  const int64_t units = numel(Shape(code.begin() + 1, code.end()));
  const std::string output = output_.empty() ? "reconstruction" : output_;
  const Tensor draws({count_, units}, normal_draws(count_, units, seed_.value_or(1)));
  const Tensor images = decode_codes(model.spec.graph, model.store, latent->value, output, draws, model.batch, model.config.threads);
  if (!out_.empty()) write_npy(resolve_named_output(out_), images);
  if (!png_.empty()) draw_grid(resolve_named_output(png_), images, fmt::format("seed {}", seed_.value_or(1)), fmt::format("'{}'", output));
  fmt::print(stderr, "decoded {} draws from the standard normal at '{}' ({} units)\n", count_, latent->value, units);
  return 0;
}

int Commands::manifold() {
  Trained model = load_latent_model();
  const std::string at = decoded_value(model.spec, at_, "--at");
  const std::string encoded = at_.empty() ? encoded_value(model.spec, "", "--at") : at_;  // --at: the codes are read there too
  const std::string output = output_.empty() ? "reconstruction" : output_;
  const Shape& code = model.spec.graph[at].shape();
  if (numel(Shape(code.begin() + 1, code.end())) != 2)
    fail(ErrorKind::shape, "manifold draws the plane of a 2-D code, but '{}' holds {} values per sample (choose a 2-D value "
         "with --at)", at, numel(Shape(code.begin() + 1, code.end())));
  DatasetSplits data = load_training_data(model.config.data, data_);
  TrainerOptions options = evaluation_options(model.spec, model.config);
  options.batch = model.batch;
  const Dataset codes = std::move(Evaluator(model.spec.graph, model.store, options).collect(data.test, {encoded}).front());
  // The grid's coordinates on each axis: the prior's quantiles at (i + 0.5) / n, or the test codes' range.
  const bool prior = model.spec.latent && model.spec.latent->prior == LatentSpec::Prior::normal;
  std::vector<double> axes[2];
  for (int axis = 0; axis < 2; ++axis) {
    double low = 0, high = 0;
    if (!prior) {
      low = high = codes.samples[static_cast<size_t>(axis)];
      for (int64_t i = 0; i < codes.count; ++i) {
        const double v = codes.samples[static_cast<size_t>(2 * i + axis)];
        low = std::min(low, v), high = std::max(high, v);
      }
    }
    for (int64_t i = 0; i < grid_; ++i)
      axes[axis].push_back(prior ? normal_quantile((static_cast<double>(i) + 0.5) / static_cast<double>(grid_))
                                 : low + (high - low) * static_cast<double>(i) / static_cast<double>(grid_ - 1));
  }
  std::vector<float> plane;  // row by row from the top (the largest second coordinate), as the scatter shows it
  for (int64_t row = grid_ - 1; row >= 0; --row)
    for (int64_t column = 0; column < grid_; ++column)
      plane.insert(plane.end(), {static_cast<float>(axes[0][static_cast<size_t>(column)]), static_cast<float>(axes[1][static_cast<size_t>(row)])});
  const Tensor images = decode_codes(model.spec.graph, model.store, at, output, Tensor({grid_ * grid_, 2}, plane), model.batch,
                                     model.config.threads);
  const Shape image = picture_shape(Shape(images.shape().begin() + 1, images.shape().end()), fmt::format("'{}'", output));
  std::vector<ImageRow> rows;
  for (int64_t row = 0; row < grid_; ++row)
    rows.push_back({fmt::format("{}[1] = {:.2f}", at, axes[1][static_cast<size_t>(grid_ - 1 - row)]),
                    images.span().subspan(static_cast<size_t>(row * grid_ * numel(image)), static_cast<size_t>(grid_ * numel(image)))});
  const std::string png = resolve_named_output(png_);
  image_rows_figure(png, rows, image);
  std::string scatter = scatter_;
  if (scatter.empty()) {
    const std::filesystem::path path(png_);
    scatter = (path.parent_path() / (path.stem().string() + "-codes" + path.extension().string())).string();
  }
  scatter_plot(resolve_named_output(scatter), codes.samples, codes.labels, model.config.report.classes,
               {.width = 900, .height = 640,
                .title = fmt::format("{}: '{}' of the {} test samples; the grid spans {}[0] {:.2f} to {:.2f}, {}[1] {:.2f} to {:.2f}",
                                     model.spec.name, encoded, codes.count, at, axes[0].front(), axes[0].back(), at,
                                     axes[1].front(), axes[1].back()),
                .x_label = encoded + "[0]", .y_label = encoded + "[1]"});
  fmt::print(stderr, "wrote {} ({}x{} codes decoded at '{}' over {}) and {} (the test codes)\n", png_, grid_, grid_, at,
             prior ? "the prior's quantiles" : "the test codes' range", scatter);
  return 0;
}

}  // namespace flowgrad
