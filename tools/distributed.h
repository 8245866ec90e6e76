// Data-parallel training across processes: the ranks of `mpirun -np N flowgrad train` (Open MPI), each
// training the same model on its shard of every batch, their gradients summed between the backward pass and
// the optimizer updates. Built with MPI when CMake finds it (FLOWGRAD_MPI=AUTO|ON|OFF); without it, or
// outside mpirun, the world is one rank and every collective is the identity.
//
// Sums are deterministic: a rank's part of a sum is added in rank order on one rank and handed out from
// there (an all-to-all, then an all-gather: no arithmetic inside MPI), so the same number of ranks gives the
// same bits, whatever MPI's algorithms and the network do.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace flowgrad {

class Communicator {
 public:
  // The process's world. init() must have been called first when the program may run under mpirun.
  static Communicator& world();
  // Starts MPI when this process was started by mpirun (or another MPI launcher), before any thread; a no-op
  // otherwise. Called once by main.
  static void init(int* argc, char*** argv);
  // Ends MPI cleanly (every rank must call it); a no-op without MPI.
  static void finalize();
  // Ends every rank of the job at once, with `code`, after a failure on this rank: no rank is left waiting
  // in a collective for one that will never come.
  [[noreturn]] static void abort(int code);

  int rank() const { return rank_; }
  int size() const { return size_; }
  bool distributed() const { return size_ > 1; }
  // A short name for messages: "rank 1 of 4 on host".
  std::string describe() const;

  // data = the sum over ranks of each rank's data, the same bits on every rank. `scratch` (resized as
  // needed) holds the ranks' parts: collectives allocate nothing once it has grown.
  void sum(std::span<float> data, std::vector<float>& scratch) const;
  // The sum of one number per rank, in rank order (losses, sample counts).
  double sum(double value) const;
  // Copies root's bytes into every rank's (parameters after initialization, a resumed checkpoint).
  void broadcast(std::span<std::byte> data, int root = 0) const;
  // Whether any rank says true: a stop request (Ctrl-C on one rank stops all).
  bool any(bool flag) const;
  void barrier() const;

 private:
  int rank_ = 0, size_ = 1;
};

// How many of a global batch's samples rank `rank` of `ranks` takes, and where its share begins: contiguous
// shares that differ by at most one sample, the first ranks taking the extra ones.
struct Shard {
  int64_t first = 0, count = 0;
};
Shard shard_of(int64_t batch, int rank, int ranks);

}  // namespace flowgrad
