#include "ops/ops.h"

#include <mutex>

namespace flowgrad {

void register_builtin_ops() {
  static std::once_flag once;
  std::call_once(once, [] {
    Registry& r = registry();
    register_binary_ops(r);
    register_unary_ops(r);
    register_reduce_ops(r);
    register_matmul_ops(r);
    register_dense_ops(r);
    register_shape_ops(r);
    register_softmax_ops(r);
    register_loss_ops(r);
    register_random_ops(r);
    register_regularizer_ops(r);
    register_metric_ops(r);
    register_misc_ops(r);
    register_optimizer_ops(r);
    register_pool_ops(r);
    register_resample_ops(r);
    register_batch_norm_ops(r);
    register_conv_ops(r);
    register_lstm_ops(r);
    register_gru_ops(r);
    register_sequence_ops(r);
  });
}

}  // namespace flowgrad
