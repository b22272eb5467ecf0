// The `hepml` command's subcommands, one file each. Each Add*Command adds its
// subcommand to the app and sets `*exit_code` when it runs.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/string_view.h"

namespace hepml::cli {

void AddInfoCommand(CLI::App& app, int* exit_code);
void AddRunCommand(CLI::App& app, int* exit_code);
void AddConformanceCommand(CLI::App& app, int* exit_code);
void AddBenchCommand(CLI::App& app, int* exit_code);
void AddDataCommand(CLI::App& app, int* exit_code);
void AddCompileCommand(CLI::App& app, int* exit_code);
void AddQuantizeCommand(CLI::App& app, int* exit_code);
void AddServeCommand(CLI::App& app, int* exit_code);
void AddPerfCommand(CLI::App& app, int* exit_code);
void AddRegistryCommand(CLI::App& app, int* exit_code);
void AddJobsCommand(CLI::App& app, int* exit_code);
void AddHpoCommand(CLI::App& app, int* exit_code);

// Exit codes shared by all subcommands.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;  // bad model, bad input data, failed tests
inline constexpr int kExitUsage = 2;    // bad command line

// Prints "hepml <command>: <message>" on stderr, one line.
void PrintError(const std::string& command, absl::string_view message);

// The path of the running executable (for re-invoking itself).
std::string SelfExecutable();

}  // namespace hepml::cli
