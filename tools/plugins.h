// Loading plugins (graph/plugin.h) the way the `flowgrad` program does: after the built-in ops and layers,
// and checked by the op harness unless trusted. docs/plugins.md has the walk-through.
#pragma once

#include "graph/plugin.h"
#include "graph/yaml_reader.h"

#include <string>

namespace flowgrad {

struct PluginOptions {
  bool trust = false;  // skip the op harness on load (`--trust-plugin`)
};

// Registers the built-in ops and layers (register_builtins), loads the plugin at `path` and, unless
// `options.trust`, runs every example of every op it registers through the op harness (check_plugin_ops,
// autodiff/gradcheck.h). Errors are Error(spec) naming the file (see open_plugin). Loading a plugin again
// returns its first record.
LoadedPlugin load_plugin(const std::string& path, const PluginOptions& options = {});

// A spec's `plugins:` list, read from `file`: each path relative to the spec file's folder; an error is
// reported at its entry's position.
void load_spec_plugins(const YAML::Node& list, const std::string& file, const PluginOptions& options);

}  // namespace flowgrad
