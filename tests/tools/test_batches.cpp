// Batching: every sample's values encode its index, so a batch shows exactly which samples it gathered.
#include <catch2/catch.hpp>

#include "graph/error.h"
#include "tools/batches.h"

#include <algorithm>
#include <chrono>
#include <numeric>
#include <thread>
#include <vector>

using namespace flowgrad;

namespace {

// Sample i holds i + k / 100 at feature k and is labelled i, so a row identifies its sample twice over.
Dataset indexed_dataset(int64_t count, Shape sample_shape = {2, 3}, bool labelled = true) {
  Dataset data;
  data.sample_shape = std::move(sample_shape);
  data.count = count;
  const int64_t features = data.sample_numel();
  for (int64_t i = 0; i < count; ++i) {
    for (int64_t k = 0; k < features; ++k) data.samples.push_back(static_cast<float>(i) + 0.01f * k);
    if (labelled) data.labels.push_back(static_cast<int32_t>(i));
  }
  return data;
}

// Checks that every row of the batch is an intact copy of the sample its label names; returns the labels.
std::vector<int64_t> samples_of(const Batch& batch, const Dataset& data) {
  REQUIRE(batch.samples.size() == static_cast<size_t>(batch.size * batch.features));
  std::vector<int64_t> indices;
  for (int64_t row = 0; row < batch.size; ++row) {
    const float* values = batch.samples.data() + row * batch.features;
    const auto index = static_cast<int64_t>(values[0]);
    if (!batch.labels.empty()) CHECK(batch.labels[static_cast<size_t>(row)] == index);
    CHECK(std::equal(values, values + batch.features, data.samples.begin() + index * batch.features));
    indices.push_back(index);
  }
  return indices;
}

template <class Iterator>
std::vector<int64_t> epoch_order(Iterator& batches, const Dataset& data, int64_t epoch) {
  batches.start_epoch(epoch);
  std::vector<int64_t> order;
  while (auto batch = batches.next()) {
    CHECK(batch->epoch == epoch);
    std::vector<int64_t> rows = samples_of(*batch, data);
    order.insert(order.end(), rows.begin(), rows.end());
  }
  return order;
}

// Runs both iterators through the rest of their epoch, checking that they yield the same batches, values
// and labels bit for bit; returns how many there were.
int64_t matching_batches(BatchIterator& expected, BatchIterator& actual) {
  int64_t batches = 0;
  while (auto want = expected.next()) {
    auto got = actual.next();
    REQUIRE(got);
    CHECK(std::vector<float>(got->samples.begin(), got->samples.end()) ==
          std::vector<float>(want->samples.begin(), want->samples.end()));
    CHECK(std::vector<int32_t>(got->labels.begin(), got->labels.end()) ==
          std::vector<int32_t>(want->labels.begin(), want->labels.end()));
    ++batches;
  }
  CHECK_FALSE(actual.next());
  return batches;
}

std::vector<int64_t> sizes_of_epoch(BatchIterator& batches) {
  batches.start_epoch(batches.epoch());
  std::vector<int64_t> sizes;
  while (auto batch = batches.next()) sizes.push_back(batch->size);
  return sizes;
}

std::vector<int64_t> iota_vector(int64_t n) {
  std::vector<int64_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), int64_t{0});
  return v;
}

}  // namespace

TEST_CASE("without shuffling batches follow the file order", "[batches]") {
  Dataset data = indexed_dataset(10);
  BatchIterator batches(data, {.batch_size = 4, .shuffle = false});
  CHECK(batches.features() == 6);
  CHECK(batches.sample_shape() == Shape{2, 3});
  CHECK(epoch_order(batches, data, 0) == iota_vector(10));
  CHECK(epoch_order(batches, data, 5) == iota_vector(10));
}

TEST_CASE("the last partial batch keeps its true size unless drop_last", "[batches]") {
  Dataset data = indexed_dataset(10);
  BatchIterator keep(data, {.batch_size = 4, .seed = 3});
  CHECK(keep.batches_per_epoch() == 3);
  CHECK(sizes_of_epoch(keep) == std::vector<int64_t>{4, 4, 2});

  BatchIterator drop(data, {.batch_size = 4, .seed = 3, .drop_last = true});
  CHECK(drop.batches_per_epoch() == 2);
  CHECK(sizes_of_epoch(drop) == std::vector<int64_t>{4, 4});
  // Dropping keeps the same order: the first eight samples of the kept epoch.
  std::vector<int64_t> kept = epoch_order(keep, data, 1);
  std::vector<int64_t> dropped = epoch_order(drop, data, 1);
  CHECK(dropped == std::vector<int64_t>(kept.begin(), kept.begin() + 8));

  BatchIterator exact(data, {.batch_size = 5, .drop_last = true});
  CHECK(sizes_of_epoch(exact) == std::vector<int64_t>{5, 5});
  BatchIterator larger(data, {.batch_size = 64});
  CHECK(sizes_of_epoch(larger) == std::vector<int64_t>{10});
  BatchIterator larger_dropped(data, {.batch_size = 64, .drop_last = true});
  CHECK(larger_dropped.batches_per_epoch() == 0);
  CHECK_FALSE(larger_dropped.next());
}

TEST_CASE("shuffling is a pure function of seed and epoch", "[batches]") {
  Dataset data = indexed_dataset(103);
  BatchIterator first(data, {.batch_size = 8, .seed = 42});
  BatchIterator second(data, {.batch_size = 8, .seed = 42});
  BatchIterator other_seed(data, {.batch_size = 8, .seed = 43});

  std::vector<int64_t> epoch0 = epoch_order(first, data, 0);
  std::vector<int64_t> epoch1 = epoch_order(first, data, 1);
  // Every sample exactly once per epoch.
  for (const auto& order : {epoch0, epoch1}) {
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == iota_vector(103));
  }
  CHECK(epoch0 != iota_vector(103));
  CHECK(epoch0 != epoch1);
  // Another iterator, visiting epochs in another order, sees the same epochs: no state carries over.
  CHECK(epoch_order(second, data, 1) == epoch1);
  CHECK(epoch_order(second, data, 0) == epoch0);
  CHECK(epoch_order(first, data, 0) == epoch0);
  CHECK(epoch_order(other_seed, data, 0) != epoch0);

  std::vector<int64_t> order(103);
  shuffled_order(42, 0, order);
  CHECK(order == epoch0);
  // Batch size does not change the order, only how it is cut.
  BatchIterator wide(data, {.batch_size = 50, .seed = 42});
  CHECK(epoch_order(wide, data, 1) == epoch1);
}

TEST_CASE("shuffled_order yields permutations of every size", "[batches]") {
  for (int64_t n : {0, 1, 2, 3, 17, 1000}) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    shuffled_order(7, 2, order);
    std::vector<int64_t> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == iota_vector(n));
  }
  // Each of 3! orders of three samples should appear across epochs; a biased shuffle would miss some.
  std::vector<std::vector<int64_t>> seen;
  for (int64_t epoch = 0; epoch < 200; ++epoch) {
    std::vector<int64_t> order(3);
    shuffled_order(1, epoch, order);
    if (std::find(seen.begin(), seen.end(), order) == seen.end()) seen.push_back(order);
  }
  CHECK(seen.size() == 6);
}

TEST_CASE("batches are flattened rows that can be viewed with the sample shape", "[batches]") {
  Dataset data = indexed_dataset(6, {1, 2, 2});
  BatchIterator batches(data, {.batch_size = 4});
  auto batch = batches.next();
  REQUIRE(batch);
  CHECK(batch->shape() == Shape{4, 4});
  CHECK(batch->shape({1, 2, 2}) == Shape{4, 1, 2, 2});
  CHECK(batch->shape({2, 2}) == Shape{4, 2, 2});
  CHECK_THROWS_AS(batch->shape({3, 2}), Error);
  samples_of(*batch, data);
}

TEST_CASE("the iterator reuses its buffers or fills the caller's", "[batches]") {
  Dataset data = indexed_dataset(20);
  BatchIterator batches(data, {.batch_size = 6, .seed = 9});
  const float* first = batches.next()->samples.data();
  while (auto batch = batches.next()) CHECK(batch->samples.data() == first);

  BatchIterator plain(data, {.batch_size = 6, .seed = 9});
  std::vector<float> samples(6 * 6);
  std::vector<int32_t> labels(6);
  batches.start_epoch(0);
  int64_t index = 0;
  while (auto batch = plain.next_into(samples, labels)) {
    CHECK(batch->samples.data() == samples.data());
    CHECK(batch->labels.data() == labels.data());
    CHECK(batch->index == index);
    auto reference = batches.next();
    REQUIRE(reference);
    CHECK(samples_of(*batch, data) == samples_of(*reference, data));
    // Random access gives the same batch without moving the cursor.
    std::vector<float> again(6 * 6);
    std::vector<int32_t> again_labels(6);
    CHECK(samples_of(plain.gather(index, again, again_labels), data) == samples_of(*batch, data));
    ++index;
  }
  CHECK(index == 4);
  std::vector<float> small(5);
  CHECK_THROWS_AS(plain.gather(0, small, labels), Error);
  CHECK_THROWS_AS(plain.gather(4, samples, labels), Error);
}

// Gathering on several OpenMP threads (BatchOptions::threads, what Trainer uses when the step takes every
// core) copies the same rows and labels as one thread, partial last batch included.
TEST_CASE("gathering on several threads gives the same batches", "[batches]") {
  Dataset data = indexed_dataset(23);
  BatchIterator one(data, {.batch_size = 5, .seed = 4});
  BatchIterator several(data, {.batch_size = 5, .seed = 4, .threads = 3});
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    one.start_epoch(epoch), several.start_epoch(epoch);
    CHECK(matching_batches(one, several) == 5);
  }
}

TEST_CASE("a dataset read from bytes gathers from them the batches its floats give", "[batches]") {
  // Rows of 200 bytes span several cache lines, and batches of 16 rows reach past the rows fetched ahead.
  Dataset bytes;
  bytes.sample_shape = {200};
  bytes.count = 45;
  for (int64_t i = 0; i < bytes.count * 200; ++i) bytes.bytes.push_back(static_cast<uint8_t>(i * 37 + i / 200));
  bytes.samples.resize(bytes.bytes.size());
  scale_bytes(bytes.bytes, bytes.samples.data());
  for (int64_t i = 0; i < bytes.count; ++i) bytes.labels.push_back(static_cast<int32_t>(i));
  Dataset floats = bytes;
  floats.bytes.clear();
  for (int threads : {1, 2}) {
    BatchIterator from_bytes(bytes, {.batch_size = 16, .seed = 5, .threads = threads});
    BatchIterator from_floats(floats, {.batch_size = 16, .seed = 5});
    CHECK(matching_batches(from_floats, from_bytes) == 3);
  }
  bytes.bytes.pop_back();
  CHECK_THROWS_WITH(BatchIterator(bytes), Catch::Contains("clear the bytes"));
}

TEST_CASE("unlabelled datasets give batches without labels", "[batches]") {
  Dataset data = indexed_dataset(7, {3}, false);
  BatchIterator batches(data, {.batch_size = 3});
  int64_t seen = 0;
  while (auto batch = batches.next()) {
    CHECK(batch->labels.empty());
    seen += static_cast<int64_t>(samples_of(*batch, data).size());
  }
  CHECK(seen == 7);
}

TEST_CASE("bad batch settings and inconsistent datasets are rejected", "[batches]") {
  Dataset data = indexed_dataset(4);
  CHECK(BatchIterator(data, {.batch_size = 1}).batches_per_epoch() == 4);
  Error zero = [&] {
    try {
      BatchIterator(data, {.batch_size = 0});
    } catch (const Error& error) {
      return error;
    }
    return Error(ErrorKind::runtime, "no error");
  }();
  CHECK(zero.kind() == ErrorKind::spec);
  CHECK_THAT(zero.what(), Catch::Contains("batch size"));

  Dataset broken = data;
  broken.labels.pop_back();
  CHECK_THROWS_WITH(BatchIterator(broken), Catch::Contains("3 labels"));
  broken = data;
  broken.samples.pop_back();
  CHECK_THROWS_WITH(BatchIterator(broken), Catch::Contains("[2, 3]"));

  Dataset empty = indexed_dataset(0);
  BatchIterator none(empty);
  CHECK(none.batches_per_epoch() == 0);
  CHECK_FALSE(none.next());
  PrefetchingBatchIterator none_prefetched(empty);
  CHECK_FALSE(none_prefetched.next());
}

TEST_CASE("prefetching yields exactly the plain iterator's batches", "[batches]") {
  Dataset data = indexed_dataset(1001, {7, 5});
  for (bool drop_last : {false, true}) {
    for (bool shuffle : {false, true}) {
      BatchOptions options{.batch_size = 64, .shuffle = shuffle, .seed = 11, .drop_last = drop_last};
      BatchIterator plain(data, options);
      PrefetchingBatchIterator prefetched(data, options);
      CHECK(prefetched.batches_per_epoch() == plain.batches_per_epoch());
      for (int64_t epoch : {0, 1, 2, 1}) {
        CHECK(epoch_order(prefetched, data, epoch) == epoch_order(plain, data, epoch));
      }
    }
  }
}

TEST_CASE("a prefetched batch stays intact while the caller works and across abandoned epochs", "[batches]") {
  Dataset data = indexed_dataset(300, {4, 4});
  BatchOptions options{.batch_size = 32, .seed = 5};
  BatchIterator plain(data, options);
  PrefetchingBatchIterator prefetched(data, options);
  // Leave epoch 0 after two batches; the batch prefetched for it must not leak into epoch 3.
  prefetched.next();
  prefetched.next();
  prefetched.start_epoch(3);
  plain.start_epoch(3);
  const float* buffers[2] = {nullptr, nullptr};
  int64_t index = 0;
  while (auto batch = prefetched.next()) {
    std::vector<float> before(batch->samples.begin(), batch->samples.end());
    // The next batch is being gathered meanwhile; it must go to the other buffer.
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(std::equal(before.begin(), before.end(), batch->samples.begin()));
    auto reference = plain.next();
    REQUIRE(reference);
    CHECK(batch->index == index);
    CHECK(samples_of(*batch, data) == samples_of(*reference, data));
    buffers[index % 2] = batch->samples.data();
    ++index;
  }
  CHECK(index == 10);
  CHECK(buffers[0] != buffers[1]);
  CHECK_FALSE(plain.next());
  // Destroying an iterator with a prefetch in flight waits for it.
  { PrefetchingBatchIterator abandoned(data, options); }
}
