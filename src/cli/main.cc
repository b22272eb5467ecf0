// The `hepml` command.
#include <unistd.h>

#include <iostream>

#include "cli/commands.h"

namespace hepml::cli {

void PrintError(const std::string& command, absl::string_view message) {
  std::string line(message);
  for (char& c : line)
    if (c == '\n') c = ' ';
  std::cerr << "hepml " << command << ": " << line << std::endl;
}

std::string SelfExecutable() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  if (n <= 0) return "hepml";
  buf[n] = '\0';
  return buf;
}

}  // namespace hepml::cli

int main(int argc, char** argv) {
  CLI::App app{"hepml: machine learning inference, compilation and serving for HEP"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hepml 0.1.0");
  int exit_code = hepml::cli::kExitOk;
  hepml::cli::AddInfoCommand(app, &exit_code);
  hepml::cli::AddRunCommand(app, &exit_code);
  hepml::cli::AddConformanceCommand(app, &exit_code);
  hepml::cli::AddBenchCommand(app, &exit_code);
#if HEPML_SERVICES
  hepml::cli::AddDataCommand(app, &exit_code);
  hepml::cli::AddCompileCommand(app, &exit_code);
  hepml::cli::AddQuantizeCommand(app, &exit_code);
  hepml::cli::AddServeCommand(app, &exit_code);
  hepml::cli::AddPerfCommand(app, &exit_code);
  hepml::cli::AddRegistryCommand(app, &exit_code);
  hepml::cli::AddJobsCommand(app, &exit_code);
  hepml::cli::AddHpoCommand(app, &exit_code);
#endif
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : hepml::cli::kExitUsage;
  }
  return exit_code;
}
