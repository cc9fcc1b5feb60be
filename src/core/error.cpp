#include "qforge/error.hpp"

namespace qforge {

void throw_bad_input(const std::string& file, const std::string& problem) {
    throw Error(ExitCode::bad_input, file + ": " + problem);
}

void throw_usage(const std::string& problem) { throw Error(ExitCode::usage, problem); }

void throw_resource(const std::string& file, const std::string& problem) {
    throw Error(ExitCode::resource, file + ": " + problem);
}

}  // namespace qforge
