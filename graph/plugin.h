// Plugins: ops and layers in a shared library that a flowgrad program loads at run time (docs/plugins.md).
//
// A plugin registers the same records as the built-in ops: OpDef (built with OpBuilder, graph/op.h) and
// LayerDef (graph/layer.h). It defines its one entry point with FLOWGRAD_PLUGIN:
//
//   FLOWGRAD_PLUGIN(plugin) {
//     plugin.add(flowgrad::OpBuilder<SwishAttrs>("swish", 1, 1).infer(...).reference(...)...build());
//   }
//
// Linking. flowgrad's libraries are static, so a plugin links none of them: its references to flowgrad's
// functions (the registry, Graph::apply, errors) resolve against the program that loads it, which exports
// them (flowgrad's targets link executables with -rdynamic). A second copy of the libraries inside the
// plugin would have a registry of its own, empty, and gradient rules built there would not find "mul".
//
// Versions. The plugin carries a stamp (FLOWGRAD_PLUGIN_STAMP: the flowgrad version it was compiled against
// and the C++ ABI) that the loader reads from the file before loading it: a plugin built against another
// version is refused naming both, before any of its code runs.
#pragma once

#include "flowgrad/version.h"
#include "graph/layer.h"
#include "graph/op.h"

#include <functional>
#include <string>
#include <vector>

namespace flowgrad {

// What a plugin's entry point adds its ops and layers to. Nothing reaches the registries until the loader has
// checked all of them: new names, a gradient rule or an explicit not_differentiable(), examples, and (unless
// trusted) the op harness on every example. A plugin is registered whole or not at all.
class PluginRegistrar {
 public:
  void add(OpDef op) { ops_.push_back(std::move(op)); }
  void add(LayerDef layer) { layers_.push_back(std::move(layer)); }

  // Called by FLOWGRAD_PLUGIN's entry point with its stamp, which the loader compares with the file's.
  void built_with(const char* stamp) { stamp_ = stamp; }
  const std::string& stamp() const { return stamp_; }
  std::vector<OpDef>& ops() { return ops_; }
  std::vector<LayerDef>& layers() { return layers_; }

 private:
  std::string stamp_;
  std::vector<OpDef> ops_;
  std::vector<LayerDef> layers_;
};

}  // namespace flowgrad

// The C++ ABI a plugin must share with the program: GCC's C++ ABI version (clang sets it too) and
// libstdc++'s std::string/std::list ABI.
#define FLOWGRAD_PLUGIN_STRINGIFY_(x) #x
#define FLOWGRAD_PLUGIN_STRINGIFY(x) FLOWGRAD_PLUGIN_STRINGIFY_(x)
#define FLOWGRAD_PLUGIN_ABI \
  "gxx-abi-" FLOWGRAD_PLUGIN_STRINGIFY(__GXX_ABI_VERSION) "/cxx11-abi-" FLOWGRAD_PLUGIN_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
// The stamp a plugin carries in its file: "flowgrad-plugin-stamp:version=0.4.0;abi=gxx-abi-1017/cxx11-abi-1".
#define FLOWGRAD_PLUGIN_STAMP_PREFIX "flowgrad-plugin-stamp:"
#define FLOWGRAD_PLUGIN_STAMP FLOWGRAD_PLUGIN_STAMP_PREFIX "version=" FLOWGRAD_VERSION ";abi=" FLOWGRAD_PLUGIN_ABI

// Defines the plugin's entry point, `extern "C" void flowgrad_plugin(flowgrad::PluginRegistrar&)`, and its
// stamp; the braces that follow are its body, where the macro's argument names the PluginRegistrar. One per
// library.
#define FLOWGRAD_PLUGIN(registrar)                                                                          \
  static void flowgrad_plugin_body(::flowgrad::PluginRegistrar& registrar);                                  \
  extern "C" [[gnu::visibility("default"), gnu::used]] const char flowgrad_plugin_stamp[] = FLOWGRAD_PLUGIN_STAMP; \
  extern "C" [[gnu::visibility("default")]] void flowgrad_plugin(::flowgrad::PluginRegistrar& registrar) {  \
    registrar.built_with(flowgrad_plugin_stamp);                                                             \
    flowgrad_plugin_body(registrar);                                                                         \
  }                                                                                                          \
  static void flowgrad_plugin_body(::flowgrad::PluginRegistrar& registrar)

namespace flowgrad {

// ---- the loading side -------------------------------------------------------------------------------------

// A plugin loaded into this process.
struct LoadedPlugin {
  std::string path;  // absolute, as loaded
  std::vector<std::string> ops;
  std::vector<std::string> layers;
  double open_ms = 0;    // reading the stamp, dlopen, the entry point, the registrations
  bool checked = false;  // a check ran on load (the op harness); not when trusted
  double check_ms = 0;   // how long it took
};

// Loads the shared library at `path` (an explicit path; nothing is searched for) and registers its ops and
// layers, then runs `check` on them; when `check` throws, they are unregistered again and the error passes
// on. Every refusal is Error(spec) naming the file: a missing file, a file without a flowgrad stamp or entry
// point, another flowgrad version or C++ ABI, a name that an op or layer already has, an op without examples
// or without a gradient rule that is not declared not_differentiable(). A library is loaded once per
// process: loading it again returns its first record. Libraries are never unloaded (the registries hold
// their code). Not thread-safe: load plugins before building graphs.
// tools/plugins.h's load_plugin() runs the op harness as `check`; most callers want that one.
using PluginCheck = std::function<void(const LoadedPlugin&)>;
LoadedPlugin open_plugin(const std::string& path, const PluginCheck& check);

// The plugins loaded so far, in order.
const std::vector<LoadedPlugin>& loaded_plugins();

}  // namespace flowgrad
