// Checkpoints: every tensor of a ParamStore (parameters and optimizer state) plus where training stood,
// in one binary file that is replaced atomically and verified by a checksum when read.
//
// Layout (all integers little-endian; a string is a uint32 byte count and the bytes):
//   magic "FGCKPT\r\n" (the \r\n exposes a text-mode transfer that rewrote line ends)
//   uint32 format version, uint64 total file size in bytes
//   uint64 spec hash, int64 step, int64 epoch, int64 stage index, string stage name, uint64 seed
//   uint32 entry count, then per entry: string key, string value
//   uint32 tensor count, then per tensor in name order: string name, uint8 dtype (0 f32, 1 bf16, 2 s32,
//     3 u8), uint8 rank, rank x int64 dims, the row-major elements
//   uint32 zlib crc32 of every byte before it
#pragma once

#include "graph/tensor.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace flowgrad {

inline constexpr uint32_t kCheckpointFormatVersion = 1;

// Where training stood when the checkpoint was written.
struct CheckpointMeta {
  uint64_t spec_hash = 0;  // identifies the model spec the tensors belong to
  int64_t step = 0;        // optimizer steps taken
  int64_t epoch = 0;       // epochs completed
  int64_t stage_index = 0; // position in the training schedule
  std::string stage_name;
  uint64_t seed = 0;
  std::map<std::string, std::string> extra;  // free-form, e.g. the command line or the dataset
  bool operator==(const CheckpointMeta&) const = default;
};

struct Checkpoint {
  std::string path;  // the file it was loaded from, for error messages
  CheckpointMeta meta;
  std::map<std::string, Tensor> tensors;
  // meta.extra[key] read as what the writer stored: a decimal integer of at least 0, or a number (decimal
  // or hex float, nan and inf included). A missing or malformed entry throws Error(io) naming the file and the key, as a
  // checkpoint whose checksum holds but whose contents were not written by flowgrad.
  int64_t count(const std::string& key) const;
  double number(const std::string& key) const;
};

// Writes every tensor of `store` and `meta` to `path` atomically (see write_file_atomically): after a
// crash at any moment `path` holds either the previous checkpoint or the new one, never a mixture.
// Throws Error(io) naming the file when it cannot be written.
void save_checkpoint(const std::string& path, const CheckpointMeta& meta, const ParamStore& store);

// Reads and verifies a checkpoint: magic, format version, size, checksum, then structure: every tensor obeys
// the size rule (graph/types.h), and step, epoch and stage index are not negative. With
// `expected_spec_hash`, also that the checkpoint was written for that spec. Throws Error(io) naming the
// file and saying what is wrong (not a checkpoint, newer version, truncated, corrupt, different spec).
Checkpoint load_checkpoint(const std::string& path, std::optional<uint64_t> expected_spec_hash = std::nullopt);

// Copies the checkpoint's tensors into the store's existing tensors (in place: plans hold pointers to them).
// The store and the checkpoint must hold the same names with the same types; otherwise throws Error(io)
// naming the checkpoint file and listing the missing, extra and mismatched tensors, and changes nothing.
void restore_checkpoint(const Checkpoint& checkpoint, ParamStore& store);

}  // namespace flowgrad
