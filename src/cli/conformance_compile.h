// `hepml conformance --via compile`: the ONNX backend suite through the
// ahead-of-time compiler instead of the Session (see conformance_compile.cc).
#pragma once

#include <string>
#include <vector>

#include "testing/backend_suite.h"

namespace hepml::cli {

struct CompiledCaseOptions {
  // Packages (by hash of their generated files), the per-case models with
  // fixed input shapes, inputs and outputs live here; a package already built
  // is reused.
  std::string work_dir;
  // The C++ compiler and its flags for NAME.cc + NAME_run.cc.
  std::string cxx = "g++";
  std::string cxxflags = "-std=c++17 -O1 -Wall -Wextra -Werror";
};

// Once before the cases: precompiles the standard headers of the generated
// code for `cxx` and `cxxflags` into the work folder (a speed-up only).
void PrepareCompiledCases(const CompiledCaseOptions& options);

// The arguments an isolated child needs to run a case the same way.
std::vector<std::string> CompiledCaseArgs(const CompiledCaseOptions& options);

// One case through the compiler, in this process (the C++ compiler and the
// generated runner are child processes): every input dim fixed to the data
// set's shape, GeneratePackage, `cxx` builds NAME_run, which runs the data
// set's inputs (.npy); its outputs are compared like the Session path's.
// A failure's message starts with its kind: "[compile]" (hepml compile's
// error, naming the node and operator), "[build]" (the C++ compiler's first
// error), "[run]" (the generated runner failed) or "[mismatch]".
testing::CaseResult RunCaseCompiled(const testing::BackendCase& test, const testing::SuiteRules& rules,
                                    const CompiledCaseOptions& options);

// "[compile]" -> "compile", ... ; "" for a message without a kind.
std::string FailureKind(const std::string& message);
// The operator a "[compile] ... cannot emit OP" message names, else "".
std::string FailingOperator(const std::string& message);

}  // namespace hepml::cli
