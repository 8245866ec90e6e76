// flowgrad: the graph runner. Subcommands train, eval, run, export, summary, dot, gradcheck, bench, ops and the
// latent-space encode, decode, interpolate, sample and manifold,
// each with the global --plugin and --trust-plugin; see `flowgrad --help` and docs/cli.md. Exit codes:
// 0 success, 1 failed check or runtime error, 2 bad spec or usage, 3 input/output error, 130 interrupted (a
// checkpoint was saved).
#include "flowgrad/version.h"
#include "graph/error.h"
#include "tools/commands.h"
#include "tools/openmp_spin.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <iostream>

using namespace flowgrad;

namespace {

// CLI11 says "A subcommand is required" for `flowgrad trian` and "The following argument was not expected:
// --epoch" for a mistyped option: name the closest subcommand or option instead.
std::string suggestion(CLI::App& app, int argc, char** argv) {
  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands({})) commands.push_back(sub->get_name());
  CLI::App* chosen = nullptr;
  for (int i = 1; i < argc && !chosen; ++i)
    for (CLI::App* sub : app.get_subcommands({}))
      if (sub->get_name() == argv[i]) chosen = sub;
  if (!chosen) {
    for (int i = 1; i < argc; ++i) {
      const std::string word = argv[i];
      if (word.starts_with("-")) continue;
      const std::string guess = closest_match(word, commands);
      return fmt::format("unknown command '{}'{}; the commands are {}", word,
                         guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), fmt::join(commands, ", "));
    }
    return {};
  }
  std::vector<std::string> options;
  for (const CLI::App* owner : {&app, chosen})  // the global options (--plugin) go after a subcommand too
    for (const CLI::Option* option : owner->get_options())
      for (const std::string& name : option->get_lnames()) options.push_back("--" + name);
  for (int i = 1; i < argc; ++i) {
    std::string word = argv[i];
    if (!word.starts_with("--")) continue;
    word = word.substr(0, word.find('='));
    if (std::find(options.begin(), options.end(), word) != options.end()) continue;
    const std::string guess = closest_match(word, options);
    return fmt::format("'{}' has no option '{}'{}; `flowgrad {} --help` lists them", chosen->get_name(), word,
                       guess.empty() ? "" : fmt::format(" (did you mean '{}'?)", guess), chosen->get_name());
  }
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  CLI::App app{"flowgrad: train, run and inspect dataflow-graph models declared in YAML specs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "flowgrad " FLOWGRAD_VERSION);
  app.fallthrough();  // global options (--plugin) after the subcommand's name as well as before
  Commands commands;
  commands.add_to(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    if (const std::string hint = suggestion(app, argc, argv); !hint.empty()) {
      std::cerr << "flowgrad: error: " << hint << '\n';
      return 2;
    }
    app.exit(e);
    return 2;
  }
  return commands.run();
}
