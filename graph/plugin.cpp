#include "graph/plugin.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>

// The loader looks this symbol up in the running program: it is there only when the program exports its
// symbols to the libraries it loads (-rdynamic), which plugins need.
extern "C" [[gnu::visibility("default"), gnu::used]] const char flowgrad_plugin_host[] = FLOWGRAD_PLUGIN_STAMP;

namespace flowgrad {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

[[noreturn]] void refuse(const std::string& path, const std::string& why, const std::vector<std::string>& notes = {}) {
  throw Error(ErrorKind::spec, fmt::format("plugin '{}': {}", path, why), {}, notes);
}

// The stamp FLOWGRAD_PLUGIN leaves in the file, read without loading it: "version=0.4.0;abi=...". Empty when
// there is none. The file is read in chunks that overlap by a stamp's length, so a stamp across two chunks
// is found too.
std::string read_stamp(const std::string& path) {
  constexpr std::string_view prefix = FLOWGRAD_PLUGIN_STAMP_PREFIX;
  constexpr size_t longest = 256;  // a stamp's length after its prefix, at most
  std::ifstream in(path, std::ios::binary);
  if (!in) refuse(path, fmt::format("cannot be read: {}", std::strerror(errno)));
  std::string window;
  std::vector<char> chunk(size_t{1} << 20);
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    window.append(chunk.data(), static_cast<size_t>(in.gcount()));
    const size_t at = window.find(prefix);
    if (at != std::string::npos && (window.size() - at >= prefix.size() + longest || !in)) {
      const size_t start = at + prefix.size();
      return window.substr(start, std::min(window.find('\0', start), window.size()) - start);
    }
    if (at == std::string::npos && window.size() > prefix.size() + longest)
      window.erase(0, window.size() - prefix.size() - longest);
    else if (at != std::string::npos)
      window.erase(0, at);
  }
  return {};
}

// "version=0.4.0;abi=gxx-abi-1017/cxx11-abi-1" -> the value of `key`.
std::string stamp_field(const std::string& stamp, const std::string& key) {
  const size_t at = stamp.find(key + "=");
  if (at == std::string::npos) return "?";
  const size_t start = at + key.size() + 1;
  return stamp.substr(start, stamp.find(';', start) - start);
}

// dlerror()'s message with C++ symbol names demangled ("undefined symbol: _ZN8flowgrad..." is opaque).
std::string readable_dlerror() {
  const char* raw = dlerror();
  std::string message = raw ? raw : "unknown error";
  const std::string marker = "undefined symbol: ";
  const size_t at = message.find(marker);
  if (at == std::string::npos) return message;
  const size_t start = at + marker.size();
  const size_t end = std::min(message.find_first_of(" \t,(", start), message.size());
  const std::string symbol = message.substr(start, end - start);
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> demangled(abi::__cxa_demangle(symbol.c_str(), nullptr, nullptr, &status),
                                                        &std::free);
  if (status == 0 && demangled)
    message = fmt::format("{}{} ({}): this program does not contain it; rebuild the plugin against this program's "
                          "flowgrad, or link the program with the flowgrad library that defines it",
                          message.substr(0, start), demangled.get(), symbol);
  return message;
}

// Who registered `name` already: a built-in or an earlier plugin.
std::string owner_of(const std::string& name, const std::vector<LoadedPlugin>& loaded) {
  for (const LoadedPlugin& p : loaded)
    if (std::count(p.ops.begin(), p.ops.end(), name) || std::count(p.layers.begin(), p.layers.end(), name))
      return fmt::format("by plugin '{}'", p.path);
  return "by flowgrad";
}

// The registrar's ops and layers, checked before any is registered.
void check_records(const std::string& path, PluginRegistrar& plugin, const std::vector<LoadedPlugin>& loaded) {
  if (plugin.ops().empty() && plugin.layers().empty()) refuse(path, "its entry point registered no op and no layer");
  std::vector<std::string> own_ops;
  for (const OpDef& op : plugin.ops()) {
    const std::string& name = op.name;
    if (name.empty()) refuse(path, "an op has no name");
    if (registry().find(name) || layer_registry().find(name))
      refuse(path, fmt::format("'{}' is already registered {} as {}; rename the plugin's op", name, owner_of(name, loaded),
                               registry().find(name) ? "an op" : "a layer"));
    if (std::count(own_ops.begin(), own_ops.end(), name)) refuse(path, fmt::format("it registers op '{}' twice", name));
    own_ops.push_back(name);
    if (!op.gradient && !op.not_differentiable)
      refuse(path, fmt::format("op '{}' has no gradient rule: give it one (OpBuilder::gradient), or declare it "
                               "OpBuilder::not_differentiable() if it has none",
                               name));
    if (op.gradient && op.not_differentiable)
      refuse(path, fmt::format("op '{}' has a gradient rule and is declared not_differentiable(): drop one", name));
    if (op.examples.empty())
      refuse(path, fmt::format("op '{}' has no examples: the op harness checks every op on its examples "
                               "(OpBuilder::example), on load and in `flowgrad gradcheck --op`",
                               name));
  }
  std::vector<std::string> own_layers;
  for (const LayerDef& layer : plugin.layers()) {
    const std::string& name = layer.name;
    if (name.empty() || !layer.build) refuse(path, fmt::format("layer '{}' needs a name and a build function", name));
    // A layer may share its name with an op of the same plugin, as the built-in dense layer and op do.
    const bool own_op = std::count(own_ops.begin(), own_ops.end(), name) > 0;
    if (layer_registry().find(name) || (registry().find(name) && !own_op))
      refuse(path, fmt::format("'{}' is already registered {} as {}; rename the plugin's layer", name,
                               owner_of(name, loaded), layer_registry().find(name) ? "a layer" : "an op"));
    if (std::count(own_layers.begin(), own_layers.end(), name))
      refuse(path, fmt::format("it registers layer '{}' twice", name));
    own_layers.push_back(name);
  }
}

void unregister(const LoadedPlugin& plugin) {
  for (const std::string& name : plugin.ops) registry().remove(name);
  for (const std::string& name : plugin.layers) layer_registry().remove(name);
}

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

struct Loaded {
  std::mutex mutex;
  std::vector<LoadedPlugin> plugins;
};

Loaded& loaded() {
  static Loaded instance;
  return instance;
}

}  // namespace

LoadedPlugin open_plugin(const std::string& given, const PluginCheck& check) {
  const auto start = Clock::now();
  std::error_code error;
  if (!fs::exists(given, error)) refuse(given, "no such file");
  const fs::path file = fs::canonical(given, error);
  if (error) refuse(given, error.message());
  if (!fs::is_regular_file(file)) refuse(given, "not a file");
  const std::string path = file.string();  // absolute: dlopen() searches no directory for it

  Loaded& state = loaded();
  std::lock_guard lock(state.mutex);
  for (const LoadedPlugin& p : state.plugins)
    if (p.path == path) return p;

  if (!dlsym(RTLD_DEFAULT, "flowgrad_plugin_host"))
    refuse(given, "this program does not export flowgrad's symbols, which plugins link against; link it with "
                  "-rdynamic (CMake: set_target_properties(PROGRAM PROPERTIES ENABLE_EXPORTS ON); flowgrad's "
                  "package targets add it to executables)");
  const std::string stamp = read_stamp(path);
  const std::string own = std::string(FLOWGRAD_PLUGIN_STAMP).substr(std::strlen(FLOWGRAD_PLUGIN_STAMP_PREFIX));
  if (stamp.empty())
    refuse(given, "not a flowgrad plugin: it carries no FLOWGRAD_PLUGIN entry point (see docs/plugins.md)");
  if (stamp_field(stamp, "version") != FLOWGRAD_VERSION)
    refuse(given, fmt::format("built against flowgrad {}, but this is flowgrad {}: rebuild it against flowgrad {}",
                              stamp_field(stamp, "version"), FLOWGRAD_VERSION, FLOWGRAD_VERSION));
  if (stamp != own)
    refuse(given, fmt::format("built for the C++ ABI {}, but this flowgrad uses {}: rebuild it with the compiler "
                              "and standard library flowgrad was built with",
                              stamp_field(stamp, "abi"), FLOWGRAD_PLUGIN_ABI));

  // RTLD_LOCAL: one plugin's symbols never resolve another's. RTLD_NOW: a missing symbol is an error here, not
  // a crash in the middle of training.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) refuse(given, fmt::format("cannot be loaded: {}", readable_dlerror()));
  using Entry = void (*)(PluginRegistrar&);
  auto entry = reinterpret_cast<Entry>(dlsym(handle, "flowgrad_plugin"));
  if (!entry)
    refuse(given, "has no entry point `flowgrad_plugin`: define it with FLOWGRAD_PLUGIN (flowgrad/plugin.h)");

  PluginRegistrar plugin;
  try {
    entry(plugin);
  } catch (const Error& e) {
    refuse(given, fmt::format("its entry point failed: {}", e.headline()), e.notes());
  } catch (const std::exception& e) {
    refuse(given, fmt::format("its entry point failed: {}", e.what()));
  } catch (...) {
    refuse(given, "its entry point threw an exception");
  }
  if (plugin.stamp() != FLOWGRAD_PLUGIN_STAMP_PREFIX + stamp) refuse(given, "its entry point's stamp differs from the file's");
  check_records(given, plugin, state.plugins);

  LoadedPlugin record{.path = path};
  try {
    for (OpDef& op : plugin.ops()) {
      record.ops.push_back(op.name);
      registry().add(std::move(op));
    }
    for (LayerDef& layer : plugin.layers()) {
      record.layers.push_back(layer.name);
      layer_registry().add(std::move(layer));
    }
    record.open_ms = ms_since(start);
    const auto checking = Clock::now();
    if (check) check(record);
    record.checked = static_cast<bool>(check);
    record.check_ms = check ? ms_since(checking) : 0;
  } catch (const Error& e) {
    unregister(record);
    if (e.message().starts_with("plugin '")) throw;
    refuse(given, e.headline(), e.notes());
  } catch (const std::exception& e) {
    unregister(record);
    refuse(given, e.what());
  }
  // The library stays loaded for the life of the process: the registries hold its functions.
  state.plugins.push_back(record);
  return record;
}

const std::vector<LoadedPlugin>& loaded_plugins() { return loaded().plugins; }

}  // namespace flowgrad
