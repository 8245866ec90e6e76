// flowgrad: the graph runner. Subcommands train, eval, run, summary, dot, gradcheck, bench and ops; see
// `flowgrad --help` and docs/cli.md. Exit codes: 0 success, 1 failed check or runtime error, 2 bad spec or
// usage, 3 input/output error, 130 interrupted (a checkpoint was saved).
#include "tools/commands.h"
#include "tools/openmp_spin.h"

#include <CLI/CLI.hpp>

#include <iostream>

using namespace flowgrad;

int main(int argc, char** argv) {
  bound_openmp_spinning(argv);
  CLI::App app{"flowgrad: train, run and inspect dataflow-graph models declared in YAML specs"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "flowgrad 0.3");
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
    app.exit(e);
    return 2;
  }
  return commands.run();
}
