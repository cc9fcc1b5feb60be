// Errors that reach the user: one line, naming the file or option and the problem, with an exit
// status that tells the class of failure (see DESIGN.md).
#pragma once

#include <stdexcept>
#include <string>

namespace qforge {

enum class ExitCode : int {
    ok = 0,
    usage = 1,     // wrong options or arguments
    bad_input = 2, // malformed, truncated or unsupported input file
    resource = 3,  // out of memory, disk full, cannot create a file
};

class Error : public std::runtime_error {
public:
    Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    ExitCode code() const { return code_; }

private:
    ExitCode code_;
};

// "<file>: <problem>", exit status 2.
[[noreturn]] void throw_bad_input(const std::string& file, const std::string& problem);
// "<what>: <problem>", exit status 1.
[[noreturn]] void throw_usage(const std::string& problem);
// "<file>: <problem>", exit status 3.
[[noreturn]] void throw_resource(const std::string& file, const std::string& problem);

}  // namespace qforge
