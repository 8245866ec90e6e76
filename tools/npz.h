// NPZ archives, numpy's np.savez format: a zip file with one member "NAME.npy" per array, which
// np.load(path)["NAME"] reads. flowgrad writes the members uncompressed, as np.savez does, and reads stored
// and deflated members (np.savez_compressed), zip64 included (numpy writes it), through libzip, which checks
// every member's CRC. Every problem with a file is an Error(io) naming it.
#pragma once

#include "tools/npy.h"

#include <string>
#include <utility>
#include <vector>

namespace flowgrad {

using NpzArrays = std::vector<std::pair<std::string, NpyArray>>;  // name (without ".npy") and array, in order

// Writes the arrays atomically (see write_file_atomically). Names must be unique and non-empty.
void write_npz(const std::string& path, const NpzArrays& arrays);

// Reads every member; a member that is not "*.npy", or holds no valid .npy file, is an error naming both
// the archive and the member. Sizes are checked against the archive's before anything is allocated.
NpzArrays read_npz(const std::string& path);

}  // namespace flowgrad
