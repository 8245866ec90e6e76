#include "tools/plugins.h"

#include "autodiff/gradcheck.h"
#include "tools/spec.h"

#include <filesystem>

namespace flowgrad {

LoadedPlugin load_plugin(const std::string& path, const PluginOptions& options) {
  register_builtins();  // first: a plugin's names must not clash with them, and the harness builds on them
  return open_plugin(path, options.trust ? PluginCheck{} : PluginCheck{check_plugin_ops});
}

void load_spec_plugins(const YAML::Node& list, const std::string& file, const PluginOptions& options) {
  const std::vector<std::string> paths = read_string_list(list, file, "plugins");
  const std::filesystem::path folder = std::filesystem::path(file).parent_path();
  for (size_t i = 0; i < paths.size(); ++i) {
    const YAML::Node entry = list.IsSequence() ? list[i] : list;
    try {
      load_plugin((folder / paths[i]).lexically_normal().string(), options);
    } catch (const Error& e) {
      throw e.at(location_of(entry, file));
    }
  }
}

}  // namespace flowgrad
