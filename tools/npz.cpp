#include "tools/npz.h"

#include "graph/error.h"
#include "tools/atomic_file.h"

#include <zip.h>

#include <memory>
#include <set>

namespace flowgrad {
namespace {

struct ArchiveCloser {
  void operator()(zip_t* archive) const { zip_discard(archive); }
};
struct SourceFreer {
  void operator()(zip_source_t* source) const { zip_source_free(source); }
};
struct FileCloser {
  void operator()(zip_file_t* file) const { zip_fclose(file); }
};

std::string zip_message(int code) {
  zip_error_t error;
  zip_error_init_with_code(&error, code);
  std::string message = zip_error_strerror(&error);
  zip_error_fini(&error);
  return message;
}

// Deflate expands at most 1032:1; a member claiming more than that over its compressed size is corrupt.
constexpr uint64_t kMaxDeflateRatio = 1032;

}  // namespace

void write_npz(const std::string& path, const NpzArrays& arrays) {
  std::set<std::string> names;
  std::vector<std::string> members;  // libzip reads them at zip_close
  members.reserve(arrays.size());
  zip_error_t error;
  zip_error_init(&error);
  std::unique_ptr<zip_source_t, SourceFreer> buffer(zip_source_buffer_create(nullptr, 0, 0, &error));
  if (!buffer) fail(ErrorKind::io, "cannot create the archive '{}': {}", path, zip_error_strerror(&error));
  zip_t* archive = zip_open_from_source(buffer.get(), ZIP_TRUNCATE, &error);
  if (!archive) fail(ErrorKind::io, "cannot create the archive '{}': {}", path, zip_error_strerror(&error));
  zip_source_keep(buffer.get());  // the archive frees its source on close; the bytes are read after that
  std::unique_ptr<zip_t, ArchiveCloser> open(archive);
  for (const auto& [name, array] : arrays) {
    if (name.empty() || !names.insert(name).second)
      fail(ErrorKind::io, "cannot write '{}': the array name '{}' is empty or used twice", path, name);
    members.push_back(encode_npy(array));
    zip_source_t* member = zip_source_buffer(archive, members.back().data(), members.back().size(), 0);
    const zip_int64_t index = member ? zip_file_add(archive, (name + ".npy").c_str(), member, ZIP_FL_ENC_UTF_8) : -1;
    if (index < 0) {
      if (member) zip_source_free(member);
      fail(ErrorKind::io, "cannot add '{}' to '{}': {}", name, path, zip_strerror(archive));
    }
    zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), ZIP_CM_STORE, 0);
  }
  if (zip_close(open.get()) != 0) fail(ErrorKind::io, "cannot write the archive '{}': {}", path, zip_strerror(open.get()));
  open.release();
  zip_stat_t stat;
  if (zip_source_stat(buffer.get(), &stat) != 0 || zip_source_open(buffer.get()) != 0)
    fail(ErrorKind::io, "cannot read back the archive '{}'", path);
  std::string bytes(static_cast<size_t>(stat.size), '\0');
  const zip_int64_t got = zip_source_read(buffer.get(), bytes.data(), bytes.size());
  zip_source_close(buffer.get());
  if (got != static_cast<zip_int64_t>(bytes.size())) fail(ErrorKind::io, "cannot read back the archive '{}'", path);
  write_file_atomically(path, bytes);
}

NpzArrays read_npz(const std::string& path) {
  int code = 0;
  std::unique_ptr<zip_t, ArchiveCloser> archive(zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &code));
  if (!archive) fail(ErrorKind::io, "cannot read the NPZ file '{}': {}", path, zip_message(code));
  NpzArrays arrays;
  const zip_int64_t count = zip_get_num_entries(archive.get(), 0);
  for (zip_int64_t i = 0; i < count; ++i) {
    zip_stat_t stat;
    if (zip_stat_index(archive.get(), static_cast<zip_uint64_t>(i), 0, &stat) != 0)
      fail(ErrorKind::io, "NPZ file '{}': cannot read member {}: {}", path, i, zip_strerror(archive.get()));
    const std::string member = stat.name;
    if (!member.ends_with(".npy") || member.size() == 4)
      fail(ErrorKind::io, "NPZ file '{}' holds '{}', which is not an .npy member (NAME.npy)", path, member);
    const bool stored = stat.comp_method == ZIP_CM_STORE;
    if (stat.size > (stored ? stat.comp_size : stat.comp_size * kMaxDeflateRatio + 64))
      fail(ErrorKind::io, "NPZ file '{}' is corrupt: member '{}' claims {} bytes from {} compressed", path, member,
           stat.size, stat.comp_size);
    std::unique_ptr<zip_file_t, FileCloser> file(zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0));
    if (!file) fail(ErrorKind::io, "NPZ file '{}': cannot open member '{}': {}", path, member, zip_strerror(archive.get()));
    std::string bytes(static_cast<size_t>(stat.size), '\0');
    const zip_int64_t got = zip_fread(file.get(), bytes.data(), bytes.size());
    if (got != static_cast<zip_int64_t>(bytes.size()))
      fail(ErrorKind::io, "NPZ file '{}' is corrupt: member '{}' could not be read whole ({})", path, member,
           zip_file_strerror(file.get()));
    arrays.emplace_back(member.substr(0, member.size() - 4), parse_npy(bytes, path + ":" + member));
  }
  return arrays;
}

}  // namespace flowgrad
