// Mini-batches over a Dataset: seeded shuffling, an optional partial last batch, and gathering into
// contiguous buffers, either plainly or prefetched on a TBB task while the caller trains.
//
// Determinism: the sample order of epoch e is a pure function of (seed, e, dataset size), and a batch's
// contents depend only on that order and its index, so the plain and the prefetching iterator yield
// identical batches whatever the thread timing, and a run resumed at epoch e sees the same batches again.
#pragma once

#include "tools/dataset.h"

#include <tbb/task_group.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace flowgrad {

struct BatchOptions {
  int64_t batch_size = 64;  // must be >= 1
  bool shuffle = true;      // false: every epoch visits the samples in file order
  uint64_t seed = 0;
  bool drop_last = false;  // true: an epoch's final partial batch is skipped
  // OpenMP threads that gather a batch's rows: a batch is read from memory the cache has not seen (for 256
  // Fashion-MNIST images 200 KB of Dataset::bytes, or 800 KB of floats, which on one thread took 0.2 ms, as
  // long as a fifth of the Keras-blog model's training step). Rows are copied, not summed, so the result is
  // the same for any count.
  int threads = 1;
};

// One batch, viewing memory owned by an iterator (valid until that iterator's next call of next() or
// start_epoch()) or by the caller (next_into / gather).
struct Batch {
  int64_t epoch = 0;
  int64_t index = 0;                // position within the epoch, 0-based
  int64_t size = 0;                 // samples in this batch; below batch_size only for an epoch's last batch
  int64_t features = 0;             // values per sample, numel(sample_shape)
  std::span<const float> samples;   // [size, features], row-major
  std::span<const int32_t> labels;  // [size]; empty when the dataset has no labels

  // [size, features]: a batch of flattened rows, e.g. [64, 784].
  Shape shape() const { return {size, features}; }
  // [size, sample_shape...] over the same memory, e.g. shape({1, 28, 28}) = [64, 1, 28, 28]. Throws
  // Error(shape) when numel(sample_shape) != features.
  Shape shape(const Shape& sample_shape) const;
};

// Fills `order` with the permutation of 0..order.size()-1 that epoch `epoch` uses: Fisher-Yates whose
// i-th draw is a counter-based random number of (seed, epoch, i), so no generator state is carried over.
void shuffled_order(uint64_t seed, int64_t epoch, std::span<int64_t> order);

// Plain iterator: gathers on the calling thread. The Dataset must outlive it and stay unchanged.
// Typical use:
//   BatchIterator batches(data, {.batch_size = 64, .seed = 7});
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     batches.start_epoch(epoch);
//     while (auto batch = batches.next()) train_step(batch->samples, batch->shape());
//   }
class BatchIterator {
 public:
  // Starts at epoch 0. Throws Error(spec) for batch_size < 1 and Error(shape) when the dataset's vectors do
  // not match its count and sample shape.
  BatchIterator(const Dataset& data, BatchOptions options = {});

  const BatchOptions& options() const { return options_; }
  const Shape& sample_shape() const { return data_->sample_shape; }
  int64_t features() const { return features_; }
  int64_t batches_per_epoch() const;
  // Samples in batch `index` of an epoch (the same for every epoch).
  int64_t batch_rows(int64_t index) const;
  int64_t epoch() const { return epoch_; }

  // Rewinds to the first batch of `epoch` and computes its order; reuses the order's memory.
  void start_epoch(int64_t epoch);

  // The next batch of the current epoch in the iterator's own buffers (allocated once, at construction);
  // nullopt once the epoch is exhausted, until start_epoch is called again.
  std::optional<Batch> next();

  // As next(), but gathers into caller-owned memory (e.g. straight into a graph input tensor), which must
  // hold batch_size * features floats and batch_size labels (labels may be empty for an unlabelled set).
  std::optional<Batch> next_into(std::span<float> samples, std::span<int32_t> labels);

  // Random access that leaves the cursor alone: gathers batch `index` of the current epoch into the given
  // memory (sized as for next_into). Concurrent calls are safe while no start_epoch runs.
  Batch gather(int64_t index, std::span<float> samples, std::span<int32_t> labels) const;

 private:
  const Dataset* data_;
  BatchOptions options_;
  int64_t features_ = 0;
  int64_t epoch_ = 0;
  int64_t cursor_ = 0;
  std::vector<int64_t> order_;
  std::vector<float> samples_;
  std::vector<int32_t> labels_;
};

// Double-buffered iterator: while the caller works on batch k, a TBB task gathers batch k+1 into the other
// buffer. That pays only where a core is free for the task: beside a training step that keeps every core
// busy, the task waits for a core and its copy is added to the step (Trainer then gathers with
// BatchIterator on the step's threads instead). Same contract and same batches as BatchIterator; a batch
// returned by next() stays valid until the following next() or start_epoch() call, which is when its buffer
// is handed to the next prefetch.
class PrefetchingBatchIterator {
 public:
  // Starts at epoch 0 and begins gathering its first batch at once.
  PrefetchingBatchIterator(const Dataset& data, BatchOptions options = {});
  ~PrefetchingBatchIterator();  // waits for a prefetch still in flight
  PrefetchingBatchIterator(const PrefetchingBatchIterator&) = delete;
  PrefetchingBatchIterator& operator=(const PrefetchingBatchIterator&) = delete;

  const BatchOptions& options() const { return plain_.options(); }
  const Shape& sample_shape() const { return plain_.sample_shape(); }
  int64_t features() const { return plain_.features(); }
  int64_t batches_per_epoch() const { return plain_.batches_per_epoch(); }
  int64_t epoch() const { return plain_.epoch(); }

  void start_epoch(int64_t epoch);
  std::optional<Batch> next();

 private:
  struct Buffers {
    std::vector<float> samples;
    std::vector<int32_t> labels;
    Batch batch;
  };
  void prefetch(int64_t index);  // starts gathering batch `index` into buffers_[ready_]
  void wait_for_prefetch();

  BatchIterator plain_;  // owns the epoch order; its gather() is what the prefetch task runs
  std::array<Buffers, 2> buffers_;
  int ready_ = 0;       // the buffer being filled, or filled, with batch `cursor_`
  int64_t cursor_ = 0;  // the batch next() returns next
  tbb::task_group tasks_;
  // TBB's own synchronisation happens inside libtbb, which ThreadSanitizer cannot see; touching this atomic
  // at the hand-offs states the same happens-before edges where FLOWGRAD_SANITIZE=thread can check them.
  std::atomic<uint64_t> handoffs_{0};
};

}  // namespace flowgrad
