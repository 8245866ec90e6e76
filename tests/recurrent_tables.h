// The op-harness tables that the recurrent ops' tests share (tests/ops/test_lstm.cpp, test_gru.cpp): each
// row is made by the family's own row function from a layer's sizes.
#pragma once

#include "autodiff/gradcheck.h"

#include <functional>
#include <vector>

namespace flowgrad::testing {

struct RecurrentConfig {
  int64_t batch, steps, in, units;
  bool initial_state;
};
using RecurrentRow = std::function<OpCase(const RecurrentConfig&)>;

// Sequences of several sizes, with and without an initial state; then one batch in one slice, in slices of
// one row, and in more slices than it has rows.
inline std::vector<OpCase> sequence_rows(const RecurrentRow& row) {
  std::vector<OpCase> rows;
  for (const RecurrentConfig& c : {RecurrentConfig{2, 3, 4, 5, false}, RecurrentConfig{2, 3, 4, 5, true},
                                   RecurrentConfig{3, 4, 2, 3, false}, RecurrentConfig{3, 4, 2, 3, true},
                                   RecurrentConfig{1, 1, 3, 2, true}})
    rows.push_back(row(c));
  for (int64_t parts : {1, 3, 5}) {
    rows.push_back(row({3, 4, 2, 3, true}));
    rows.back().attrs = {{"batch_parts", parts}};
  }
  return rows;
}

// The same input at every step (the steps attribute: x is [batch, in]); then in one slice, and in as many
// slices as rows.
inline std::vector<OpCase> repeated_rows(const RecurrentRow& row) {
  std::vector<OpCase> rows;
  for (const RecurrentConfig& c : {RecurrentConfig{2, 3, 4, 5, false}, RecurrentConfig{3, 4, 2, 3, true},
                                   RecurrentConfig{1, 1, 3, 2, false}}) {
    rows.push_back(row(c));
    rows.back().inputs[0] = {{c.batch, c.in}};
    rows.back().attrs = {{"steps", c.steps}};
  }
  for (int64_t parts : {1, 3}) {
    rows.push_back(rows[1]);
    rows.back().attrs = {{"steps", int64_t{4}}, {"batch_parts", parts}};
  }
  return rows;
}

// A larger layer with an initial state, forward only.
inline OpCase larger_forward_row(const RecurrentRow& row) {
  OpCase larger = row({16, 12, 24, 32, true});
  for (int i = 0; i < static_cast<int>(larger.inputs.size()); ++i) larger.no_grad.push_back(i);
  return larger;
}

}  // namespace flowgrad::testing
