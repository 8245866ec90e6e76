// Metrics: scalar measurements that are reported, not trained. They have no gradient rule, so a loss that
// reads one is refused by the autodiff pass.
//   accuracy(logits, labels)  the fraction of rows of logits[batch, classes] whose s32 label is among the
//                             top_k scores (top_k 1: the arg-max, the first of tied maxima counting).
// Like the losses, the value is a mean over the batch, so an epoch's figure is the batch-size weighted
// mean of its batches' values.
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

namespace flowgrad {
namespace {

struct AccuracyAttrs {
  int64_t top_k = 1;
  template <class F> void fields(F&& f) { f("top_k", top_k); }
};

// Whether `label` is among the top_k entries of row: fewer than top_k entries score higher than it, ties
// going to the lower index (as numpy's argmax and a stable sort order them).
template <class T>
bool in_top_k(const T* row, int64_t classes, int64_t label, int64_t top_k) {
  const T score = row[label];
  int64_t ahead = 0;
  for (int64_t j = 0; j < classes; ++j) ahead += row[j] > score || (row[j] == score && j < label);
  return ahead < top_k;
}

int64_t checked_label(double label, int64_t classes, int64_t row) {
  const auto k = static_cast<int64_t>(label);
  if (k < 0 || k >= classes)
    fail(ErrorKind::runtime, "accuracy: label {} of batch row {} is outside [0, {}): are the labels the classes of these "
         "scores?", k, row, classes);
  return k;
}

template <class T, class Label>
double accuracy_of(const T* scores, const Label* labels, int64_t batch, int64_t classes, int64_t top_k) {
  int64_t hits = 0;
  for (int64_t b = 0; b < batch; ++b)
    hits += in_top_k(scores + b * classes, classes, checked_label(static_cast<double>(labels[b]), classes, b), top_k);
  return static_cast<double>(hits) / static_cast<double>(batch);
}

}  // namespace

void register_metric_ops(Registry& r) {
  r.add(OpBuilder<AccuracyAttrs>("accuracy", 2, 2)
            .summary("fraction of rows of logits[batch, classes] whose s32 label is among the top_k scores (a metric)")
            .example({.inputs = {{{6, 4}}, {{6}, DType::s32}}, .int_high = 4, .no_grad = {0, 1}, .label = "top 1"})
            .example({.inputs = {{{5, 3}}, {{5}, DType::s32}}, .attrs = {{"top_k", int64_t{2}}}, .int_high = 3,
                      .no_grad = {0, 1}, .label = "top 2"})
            .infer([](const ShapeContext& c, const AccuracyAttrs& a) {
              const TensorType &scores = c.inputs[0], &labels = c.inputs[1];
              if (scores.dtype != DType::f32 || scores.shape.size() != 2)
                c.fail("the scores must be f32 logits or probabilities [batch, classes]");
              if (labels.dtype != DType::s32 || labels.shape != Shape{scores.shape[0]})
                c.fail("the labels must be s32 class indices [batch], one per row of scores");
              if (a.top_k < 1 || a.top_k > scores.shape[1])
                c.fail(fmt::format("top_k must be between 1 and the {} classes, got {}", scores.shape[1], a.top_k));
              return std::vector<TensorType>{{{}, DType::f32}};
            })
            .reference([](const RefContext& c, const AccuracyAttrs& a) {
              const RefTensor& scores = c.in(0);
              return std::vector<RefTensor>{RefTensor(
                  {}, accuracy_of(scores.data.data(), c.in(1).data.data(), scores.shape[0], scores.shape[1], a.top_k))};
            })
            .kernel([](const KernelContext& c, const AccuracyAttrs& a) -> std::unique_ptr<Kernel> {
              const int64_t batch = c.inputs[0].shape[0], classes = c.inputs[0].shape[1], top_k = a.top_k;
              return std::make_unique<kernels::FunctionKernel>(
                  [batch, classes, top_k](const KernelArgs& args) {
                    *args.output(0) = static_cast<float>(
                        accuracy_of(args.input(0), args.input<int32_t>(1), batch, classes, top_k));
                  },
                  static_cast<double>(batch * classes), /*parallel=*/false);
            })
            .build());
}

Value accuracy(Value logits, Value labels, int64_t top_k) {
  return logits.graph().apply("accuracy", {logits, labels}, AccuracyAttrs{top_k});
}

}  // namespace flowgrad
