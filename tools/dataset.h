// Loading IDX datasets (the MNIST file format) into float samples and integer labels.
//
// An IDX file is a 4-byte magic 0x0000TTRR (TT = element type code, RR = rank), RR big-endian uint32
// dimensions, then the elements in row-major order. flowgrad reads unsigned-byte files (TT = 0x08) of any
// rank, raw or gzip-compressed; gzip is recognised by its magic bytes (1f 8b), never by the file name.
#pragma once

#include "graph/types.h"

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace flowgrad {

// The contents of one IDX file. dims[0] is the item count for every file flowgrad reads.
struct IdxArray {
  Shape dims;
  std::vector<uint8_t> data;  // numel(dims) bytes, row-major
};

// values[i] = bytes[i] / 255 as the exactly rounded float quotient: how every loader turns bytes into samples
// in [0, 1], and how a batch is gathered from Dataset::bytes.
void scale_bytes(std::span<const uint8_t> bytes, float* values);

// Reads one IDX file of unsigned bytes.
// Throws Error(io) naming the file when it is missing, unreadable, truncated, has trailing bytes, a corrupt
// or truncated gzip stream (its CRC-32 trailer included), a bad magic, or an element type other than
// unsigned byte. The declared size is checked against the file's before anything is allocated, and a gzip
// file that claims more than 8 times its own size is inflated once, keeping nothing, before memory is
// allocated for it: a truncated or corrupt file costs about 1 MiB, whatever its header claims.
IdxArray read_idx(const std::string& path);

// A labelled set of samples, all of one shape.
struct Dataset {
  Shape sample_shape;           // e.g. [28, 28]; a batch flattens it to one row
  int64_t count = 0;            // number of samples
  std::vector<float> samples;   // count * numel(sample_shape) values, scaled from bytes to [0, 1] by /255
  std::vector<int32_t> labels;  // count labels, or empty for an unlabelled set
  // The samples as the unsigned bytes they were read from (IDX, NPY of uint8), samples[i] being
  // scale_bytes of bytes[i]; empty for data read as floats. Whatever changes samples must clear it. Batches
  // are gathered from these when present: rows the cache has not seen cost a quarter of the memory traffic
  // of their floats.
  std::vector<uint8_t> bytes;
  std::string source;  // the file the samples came from (or what computed them), for messages
  int64_t sample_numel() const { return numel(sample_shape); }
};

struct DatasetSplits {
  Dataset train, test;
  std::string source;  // the directory the files came from
};

// The checks every loader makes on what it read from `path`: at least one sample, and a sample shape that
// obeys the size rule (graph/types.h), since a sample becomes a row of an input. Throws Error(io).
void check_samples(const Dataset& data, const std::string& path);
// Throws Error(io) naming both sources unless the train and test splits hold samples of one shape.
void check_same_samples(const DatasetSplits& splits, const std::string& train, const std::string& test);

// Loads an images file (rank >= 2, dims[0] = count) and a labels file (rank 1) that must agree on the
// count. Throws Error(io) naming both files on a mismatch, and as check_samples.
Dataset load_idx_pair(const std::string& images_path, const std::string& labels_path);

// Loads train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and
// t10k-labels-idx1-ubyte from `dir`, each with or without a .gz suffix (the plain name wins when both
// exist). Works unchanged for MNIST and Fashion-MNIST. Throws Error(io) listing every path tried when the
// directory or a file is missing, with the hint to install Debian's dataset-fashion-mnist or pass --data.
// The four files are decoded concurrently on TBB tasks.
DatasetSplits load_idx_directory(const std::string& dir);

// $FLOWGRAD_DATA when set and non-empty, else /usr/share/datasets/fashion-mnist (where Debian's
// dataset-fashion-mnist package puts the files).
std::string default_fashion_mnist_dir();

}  // namespace flowgrad
