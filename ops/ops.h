// The built-in ops: registration and the C++ front end. Each front-end function adds one node to the
// graph of its first argument and returns its output.
#pragma once

#include "graph/graph.h"
#include "ops/activation.h"

#include <array>
#include <cstdint>
#include <span>
#include <optional>
#include <string>
#include <vector>

namespace flowgrad {

// Registers every built-in op once (idempotent, thread-safe). Call before building graphs.
void register_builtin_ops();

// One function per op family (one file each).
void register_binary_ops(Registry& r);     // binary.cpp: add sub mul div
void register_unary_ops(Registry& r);      // unary.cpp: relu leaky_relu elu sigmoid tanh softplus exp log square sqrt abs clip neg scale, activation_grad
void register_reduce_ops(Registry& r);     // reduce.cpp: sum mean max, sum_to, broadcast_to
void register_matmul_ops(Registry& r);     // matmul.cpp: matmul
void register_dense_ops(Registry& r);      // dense.cpp: dense
void register_shape_ops(Registry& r);      // shape.cpp: reshape transpose concat slice pad flatten
void register_softmax_ops(Registry& r);    // softmax.cpp: softmax log_softmax
void register_loss_ops(Registry& r);       // loss.cpp: categorical_crossentropy l1 l2, and pair_loss.cpp's (+ gradient ops)
void register_pair_losses(Registry& r);    // pair_loss.cpp: mse binary_crossentropy binary_crossentropy_logits
void register_random_ops(Registry& r);     // random.cpp: random_normal gaussian_sample dropout masking_noise
void register_regularizer_ops(Registry& r);// regularizer.cpp: kl_normal kl_sparsity contractive_dense (+ their gradient ops)
void register_metric_ops(Registry& r);     // metric.cpp: accuracy
void register_misc_ops(Registry& r);       // misc.cpp: stop_gradient identity fill_like
void register_optimizer_ops(Registry& r);  // optimizer.cpp: sgd_update adam_update global_norm_scale
void register_pool_ops(Registry& r);       // pool.cpp: max_pool2d avg_pool2d (+ their gradient ops, max_pool2d_gather)
void register_resample_ops(Registry& r);   // resample.cpp: upsample upsample_grad
void register_batch_norm_ops(Registry& r); // batch_norm.cpp: batch_norm batch_norm_grad batch_norm_update
void register_conv_ops(Registry& r);       // conv.cpp: conv2d conv2d_transpose (+ their backward_data and backward_weights ops)
void register_lstm_ops(Registry& r);       // lstm.cpp (+ lstm_kernels.cpp): lstm lstm_grad
void register_gru_ops(Registry& r);        // gru.cpp (+ gru_kernels.cpp): gru gru_grad
void register_sequence_ops(Registry& r);   // sequence.cpp: repeat reverse

// ---- arithmetic (numpy broadcasting) ----
Value operator+(Value a, Value b);
Value operator-(Value a, Value b);
Value operator*(Value a, Value b);
Value operator/(Value a, Value b);
Value neg(Value x);
Value scale(Value x, double factor);

// ---- elementwise ----
Value relu(Value x);
Value leaky_relu(Value x, double alpha = 0.01);
Value elu(Value x, double alpha = 1.0);
Value sigmoid(Value x);
Value tanh(Value x);
Value softplus(Value x);
Value exp(Value x);
Value log(Value x);
Value square(Value x);
Value sqrt(Value x);
Value abs(Value x);
Value clip(Value x, double min, double max);
// alpha: leaky_relu's slope or elu's saturation; unset, the op's default (default_alpha).
Value activate(Value x, Activation activation, std::optional<double> alpha = std::nullopt);
// g * activation'(.) where the derivative is computed from the activation's output y.
Value activation_grad(Value g, Value y, Activation activation, double alpha = 0);

// ---- reductions (axes may be negative; empty axes = all) ----
Value sum(Value x, std::vector<int64_t> axes = {}, bool keepdims = false);
Value mean(Value x, std::vector<int64_t> axes = {}, bool keepdims = false);
Value max(Value x, std::vector<int64_t> axes = {}, bool keepdims = false);
// Sums x over the axes along which `like` was broadcast, giving like's shape.
Value sum_to(Value x, Value like);
// Broadcasts x to like's shape. `axes`: axes of like that x lacks (reduced without keepdims); with `mean`
// the result is divided by the number of elements each input element was spread over.
Value broadcast_to(Value x, Value like, std::vector<int64_t> axes = {}, bool mean = false);

// ---- linear algebra ----
// Batched matrix product over the last two axes; leading axes broadcast.
Value matmul(Value a, Value b, bool transpose_a = false, bool transpose_b = false);
// x[batch..., in] · w[in, out] + b[out], with the activation fused as a oneDNN post-op. Leading axes are all
// batch: on x[batch, steps, in] it is a time-distributed dense layer.
Value dense(Value x, Value w, std::optional<Value> b, Activation activation = Activation::linear,
            std::optional<double> alpha = std::nullopt);

// ---- convolution (NCHW) ----
// How conv2d and conv2d_transpose pad: `valid` not at all; `same` as TensorFlow (conv2d: output =
// ceil(input / stride), an odd total pad puts the extra row/column at the bottom/right; conv2d_transpose:
// output = input * stride, the adjoint of that); `explicit_pads`: the given [top, left, bottom, right].
enum class Padding { valid, same, explicit_pads };
std::span<const char* const> enum_names(Padding);  // "valid", "same", "explicit"

struct Conv2dOptions {
  std::array<int64_t, 2> stride = {1, 1};  // [height, width]
  Padding padding = Padding::valid;
  std::array<int64_t, 4> pads = {0, 0, 0, 0};  // [top, left, bottom, right], with Padding::explicit_pads
  std::array<int64_t, 2> dilation = {1, 1};    // Keras' dilation_rate: 1 is a dense kernel
  int64_t groups = 1;
  Activation activation = Activation::linear;  // fused as a oneDNN post-op
  std::optional<double> alpha;                 // leaky_relu slope, elu saturation; unset: default_alpha
};
// act(x ⋆ w + b): x[batch, channels, height, width], w[filters, channels / groups, kh, kw], b[filters].
Value conv2d(Value x, Value w, std::optional<Value> b, const Conv2dOptions& options = {});
// The adjoint of conv2d with the same weights (its gradient with respect to x), plus bias and activation:
// x[batch, in, height, width], w[in, out / groups, kh, kw] (PyTorch's layout), b[out]. The output is
// (input - 1) * stride + dilated kernel - pads + output_padding; output_padding (below the stride) adds the
// rows and columns at the bottom and right that the stride leaves ambiguous.
Value conv2d_transpose(Value x, Value w, std::optional<Value> b, const Conv2dOptions& options = {},
                       std::array<int64_t, 2> output_padding = {0, 0});

// ---- shapes ----
Value reshape(Value x, Shape shape);  // one dimension may be -1; 0 copies the input's dimension
Value transpose(Value x, std::vector<int64_t> permutation);
Value concat(const std::vector<Value>& xs, int64_t axis);
Value slice(Value x, std::vector<int64_t> axes, std::vector<int64_t> starts, std::vector<int64_t> ends);
Value flatten(Value x);  // [batch, d1, d2, ...] -> [batch, d1 * d2 * ...]

// ---- images: x[batch, channels, height, width] ----
// Pooling pads like conv2d (Padding above): `valid`, `same` (output = ceil(input / stride)), or explicit
// `pads` [top, left, bottom, right] (padding `explicit`, or left `valid`).
struct Window2d {
  std::vector<int64_t> kernel;       // [height, width], or one size for both
  std::vector<int64_t> stride = {};  // the same; empty: the kernel (non-overlapping windows)
  Padding padding = Padding::valid;
  std::vector<int64_t> pads = {};    // [top, left, bottom, right]; each smaller than the kernel
};
// With `training`, the node keeps oneDNN's workspace (the arg-max of every window) as a second output
// for the gradient; without, the node cannot be differentiated.
Value max_pool2d(Value x, const Window2d& window, bool training = true);
// count_include_pad: padded positions count in the divisor (they never do in max_pool2d).
Value avg_pool2d(Value x, const Window2d& window, bool count_include_pad = false);

enum class Resample { nearest, bilinear };
std::span<const char* const> enum_names(Resample);
// Half-pixel sampling, as PyTorch's interpolate with align_corners=False ("nearest" is its nearest-exact).
Value upsample(Value x, int64_t scale, Resample mode = Resample::nearest);
Value upsample_to(Value x, int64_t height, int64_t width, Resample mode = Resample::nearest);

// ---- normalization ----
struct BatchNorm {
  double epsilon = 1e-5;
  double momentum = 0.1;  // PyTorch's: running = (1 - momentum) * running + momentum * batch statistic
  bool training = true;
};
// x[batch, channels, ...] with gamma, beta, running_mean, running_var of shape [channels] (the running
// statistics are state). Training normalizes with the batch statistics and adds a batch_norm_update node
// that updates the running statistics in place (the variance unbiased, as PyTorch); inference uses them.
// `name` names the node (and "<name>/update"); empty: generated.
Value batch_norm(Value x, Value gamma, Value beta, Value running_mean, Value running_var, const BatchNorm& options = {},
                 std::string name = {});

// ---- sequences (batch-first: x[batch, steps, features]) ----
// x[batch, rest...] -> [batch, times, rest...]: every step sees the same x.
Value repeat(Value x, int64_t times);
// x with the order along `axis` reversed (axis 1 of a sequence is time).
Value reverse(Value x, int64_t axis = 1);
// v when x is repeat(v, T) with v[batch, features]: lstm() and gru() then take v with steps = T.
std::optional<Value> repeated_source(Value x);

struct LstmState {
  Value h, c;  // [batch, units] each
};
struct LstmResult {
  Value sequence;  // y[batch, steps, units]: h after every step
  Value h, c;      // the final states, [batch, units]
};
// One unidirectional LSTM layer (oneDNN's vanilla LSTM, gates i, f, c~, o side by side in the weights):
// x[batch, steps, in], w_x[in, 4 units], w_h[units, 4 units], b[4 units]; the initial state defaults to zeros.
// The node is called `name` (a unique "lstm..." when empty); its fourth output is the workspace that the
// gradient reads.
LstmResult lstm(Value x, Value w_x, Value w_h, Value b, std::optional<LstmState> initial = std::nullopt,
                std::string name = {});

struct GruResult {
  Value sequence;  // y[batch, steps, units]: h after every step
  Value h;         // the final state, [batch, units]
};
// One unidirectional GRU layer, PyTorch's (Keras' reset_after): gates r, z, n side by side in the weights,
// n = tanh(x·w_xn + b_xn + r (h·w_hn + b_hn)), h' = (1 - z) n + z h. x[batch, steps, in], w_x[in, 3 units],
// w_h[units, 3 units], b_x and b_h [3 units]; h0 defaults to zeros. The node is called `name` (a unique
// "gru..." when empty); its third output is the workspace that the gradient reads.
GruResult gru(Value x, Value w_x, Value w_h, Value b_x, Value b_h, std::optional<Value> h0 = std::nullopt,
              std::string name = {});

// ---- softmax ----
Value softmax(Value x, int64_t axis = -1);
Value log_softmax(Value x, int64_t axis = -1);

// ---- losses (scalar results) ----
// mean: over every element; sum: of every element; sum_over_batch_size: the sum divided by the batch (the
// first axis), i.e. each sample's sum averaged over the batch (Keras' name), as a VAE's per-image ELBO is.
enum class Reduction { mean, sum, sum_over_batch_size };
std::span<const char* const> enum_names(Reduction);
// What a reduction divides the sum over `shape` by: numel(shape), 1, or shape[0] (1 for a scalar).
double reduction_divisor(Reduction reduction, const Shape& shape);
Value mse(Value prediction, Value target, Reduction reduction = Reduction::mean);
// How binary_crossentropy treats probabilities at 0 and 1: Keras clamps them to [1e-7, 1 - 1e-7] (no gradient
// outside), PyTorch's BCELoss floors the logs at -100.
enum class BceClamp { keras, torch };
std::span<const char* const> enum_names(BceClamp);
// On probabilities. Of a sigmoid's output (a sigmoid op, or a layer's sigmoid activation), it is computed
// from the sigmoid's logits instead, exactly and with a gradient that never vanishes (ops/pair_loss.cpp).
Value binary_crossentropy(Value probability, Value target, Reduction reduction = Reduction::mean,
                          BceClamp clamp = BceClamp::keras);
// On logits, computed stably as max(z, 0) - z t + log(1 + exp(-|z|)).
Value binary_crossentropy_logits(Value logits, Value target, Reduction reduction = Reduction::mean);
// logits[batch, classes], labels[batch] (s32 class indices); mean over the batch.
Value categorical_crossentropy(Value logits, Value labels, Reduction reduction = Reduction::mean);
// weight * sum |x| and weight * sum x^2; Reduction::sum_over_batch_size divides by the batch (Keras'
// activity regularizers), mean by the element count.
Value l1(Value x, double weight = 1.0, Reduction reduction = Reduction::sum);
Value l2(Value x, double weight = 1.0, Reduction reduction = Reduction::sum);

// ---- randomness (seeded; a new draw every step) ----
Value random_normal(Value like, uint64_t seed, double mean = 0, double stddev = 1);
// mu + exp(logvar / 2) * eps with eps ~ N(0, 1): a VAE's reparameterized sample. Outside training it draws
// as in training, or gives mu when !sample_in_inference.
Value gaussian_sample(Value mu, Value logvar, uint64_t seed, bool sample_in_inference = true);
Value dropout(Value x, double rate, uint64_t seed);        // inverted dropout: kept values scaled by 1/(1-rate)
Value masking_noise(Value x, double rate, uint64_t seed);  // zeroes a fraction `rate` of entries, no rescale

// ---- regularizers (scalar results) ----
// KL(N(mu, exp(logvar)) || N(0, 1)) summed over the latent axes; by default averaged over the batch.
Value kl_normal(Value mu, Value logvar, Reduction reduction = Reduction::sum_over_batch_size);
// beta * sum_j KL(rho || rho_hat_j) with rho_hat_j the batch mean of h's unit j (h[batch, units...]).
Value kl_sparsity(Value h, double rho = 0.05, double beta = 1.0);
// The batch mean of ||dh/dx||_F^2 for h = activation(x w + b): h[batch, units], w[in, units].
Value contractive_dense(Value h, Value w, Activation activation = Activation::sigmoid, double alpha = 0);

// ---- metrics (scalar results, not differentiable) ----
// The fraction of rows of logits[batch, classes] whose label[batch] (s32) is among the top_k scores.
Value accuracy(Value logits, Value labels, int64_t top_k = 1);

// ---- misc ----
Value stop_gradient(Value x);
Value identity(Value x);
Value fill_like(Value like, double value);

}  // namespace flowgrad
