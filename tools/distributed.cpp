// The communicator of tools/distributed.h, on MPI when FLOWGRAD_HAVE_MPI is defined.
#include "tools/distributed.h"

#include "graph/error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

#ifdef FLOWGRAD_HAVE_MPI
#include <mpi.h>
#include <unistd.h>
#endif

namespace flowgrad {

namespace {

#ifdef FLOWGRAD_HAVE_MPI
bool mpi_started = false;

// Open MPI, MPICH and Slurm set these in the processes they start.
bool launched_by_mpi() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_PROCID"})
    if (std::getenv(name)) return true;
  return false;
}

void check(int status, const char* what) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  fail(ErrorKind::runtime, "MPI {} failed: {}", what, std::string(text, static_cast<size_t>(length)));
}
#endif

}  // namespace

Shard shard_of(int64_t batch, int rank, int ranks) {
  const int64_t base = batch / ranks, extra = batch % ranks;
  return {rank * base + std::min<int64_t>(rank, extra), base + (rank < extra ? 1 : 0)};
}

Communicator& Communicator::world() {
  static Communicator world;
  return world;
}

void Communicator::init(int* argc, char*** argv) {
#ifdef FLOWGRAD_HAVE_MPI
  if (mpi_started || !launched_by_mpi()) return;
  int provided = 0;
  // Funneled: only the thread that runs the trainer calls MPI; TBB and OpenMP workers never do.
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "initialization");
  mpi_started = true;
  // Errors come back as codes (turned into flowgrad errors), not as MPI's own abort.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  Communicator& w = world();
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size_);
#else
  (void)argc, (void)argv;
#endif
}

void Communicator::finalize() {
#ifdef FLOWGRAD_HAVE_MPI
  if (mpi_started) MPI_Finalize();
  mpi_started = false;
#endif
}

void Communicator::abort(int code) {
#ifdef FLOWGRAD_HAVE_MPI
  if (mpi_started && world().size_ > 1) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::exit(code);
}

std::string Communicator::describe() const {
#ifdef FLOWGRAD_HAVE_MPI
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  return fmt::format("rank {} of {} on {}", rank_, size_, host);
#else
  return fmt::format("rank {} of {}", rank_, size_);
#endif
}

void Communicator::sum(std::span<float> data, std::vector<float>& scratch) const {
  if (size_ == 1) return;
#ifdef FLOWGRAD_HAVE_MPI
  // Rank r owns elements [r * part, (r + 1) * part) of the data padded to size * part: every rank sends
  // each owner its piece (all-to-all), the owner adds the pieces in rank order, and an all-gather hands
  // the sums to everyone.
  const auto n = static_cast<int64_t>(data.size());
  const int64_t part = (n + size_ - 1) / size_;
  const auto padded = static_cast<size_t>(part * size_);
  scratch.resize(2 * padded);
  float* send = scratch.data();
  float* pieces = scratch.data() + padded;
  std::copy(data.begin(), data.end(), send);
  std::fill(send + n, send + padded, 0.f);
  const int count = static_cast<int>(part);
  check(MPI_Alltoall(send, count, MPI_FLOAT, pieces, count, MPI_FLOAT, MPI_COMM_WORLD), "all-to-all");
  float* mine = send + static_cast<size_t>(rank_) * static_cast<size_t>(part);
  std::copy(pieces, pieces + part, mine);
  for (int r = 1; r < size_; ++r) {
    const float* piece = pieces + static_cast<size_t>(r) * static_cast<size_t>(part);
    for (int64_t i = 0; i < part; ++i) mine[i] += piece[i];
  }
  check(MPI_Allgather(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, send, count, MPI_FLOAT, MPI_COMM_WORLD), "all-gather");
  std::copy(send, send + n, data.begin());
#else
  (void)data, (void)scratch;
#endif
}

double Communicator::sum(double value) const {
  if (size_ == 1) return value;
#ifdef FLOWGRAD_HAVE_MPI
  std::vector<double> all(static_cast<size_t>(size_));
  check(MPI_Allgather(&value, 1, MPI_DOUBLE, all.data(), 1, MPI_DOUBLE, MPI_COMM_WORLD), "all-gather");
  double total = 0;
  for (double v : all) total += v;  // in rank order, the same on every rank
  return total;
#else
  return value;
#endif
}

void Communicator::broadcast(std::span<std::byte> data, int root) const {
  if (size_ == 1) return;
#ifdef FLOWGRAD_HAVE_MPI
  // MPI counts are ints: large tensors go in pieces.
  constexpr size_t kPiece = size_t{1} << 30;
  for (size_t offset = 0; offset < data.size(); offset += kPiece) {
    const size_t bytes = std::min(kPiece, data.size() - offset);
    check(MPI_Bcast(data.data() + offset, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD), "broadcast");
  }
#else
  (void)data, (void)root;
#endif
}

bool Communicator::any(bool flag) const {
  if (size_ == 1) return flag;
#ifdef FLOWGRAD_HAVE_MPI
  int mine = flag ? 1 : 0, all = 0;
  check(MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "all-reduce");
  return all != 0;
#else
  return flag;
#endif
}

void Communicator::barrier() const {
#ifdef FLOWGRAD_HAVE_MPI
  if (size_ > 1) check(MPI_Barrier(MPI_COMM_WORLD), "barrier");
#endif
}

}  // namespace flowgrad
