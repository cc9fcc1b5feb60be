// qforge: one binary, git-style subcommands.
#include <cstdio>
#include <iostream>
#include <new>

#include "cli/commands.hpp"
#include "qforge/error.hpp"

namespace {

const char* kVersion = "qforge " QFORGE_VERSION " (" QFORGE_GIT ")";

int run(int argc, char** argv) {
    CLI::App app{"qforge: convert, quantize, run and measure LLMs (GGUF and MLX)", "qforge"};
    app.set_version_flag("--version", kVersion);
    app.require_subcommand(0, 1);
    std::vector<qforge::cli::Command> commands;
    commands.push_back(qforge::cli::add_inspect(app));
    commands.push_back(qforge::cli::add_convert(app));
    commands.push_back(qforge::cli::add_quantize(app));
    commands.push_back(qforge::cli::add_dequantize(app));
    commands.push_back(qforge::cli::add_run(app));
    commands.push_back(qforge::cli::add_tokenize(app));
    commands.push_back(qforge::cli::add_perplexity(app));
    commands.push_back(qforge::cli::add_imatrix(app));
    commands.push_back(qforge::cli::add_bench(app));
    commands.push_back(qforge::cli::add_report(app));
    commands.push_back(qforge::cli::add_advise(app));
    commands.push_back(qforge::cli::add_synth(app));
#ifndef QFORGE_NO_SERVE
    commands.push_back(qforge::cli::add_serve(app));
#endif

    auto* help = app.add_subcommand("help", "Show help for qforge or for one command");
    std::string help_topic;
    help->add_option("command", help_topic, "Command to describe");

    try {
        auto args = qforge::cli::translate_short_options(argc, argv);
        std::vector<char*> argp;
        for (auto& a : args) argp.push_back(a.data());
        app.parse(static_cast<int>(argp.size()), argp.data());
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::cerr << "qforge: " << e.what() << " (see 'qforge " << (app.get_subcommands().empty() ? "" : app.get_subcommands()[0]->get_name() + " ") << "--help')\n";
        return static_cast<int>(qforge::ExitCode::usage);
    }
    if (help->parsed()) {
        if (help_topic.empty()) {
            std::cout << app.get_formatter()->make_help(&app, "qforge", CLI::AppFormatMode::Normal);
            return 0;
        }
        for (const auto& c : commands) {
            if (c.app->get_name() == help_topic) {
                std::cout << c.app->get_formatter()->make_help(c.app, c.app->get_name(), CLI::AppFormatMode::Normal);
                return 0;
            }
        }
        std::cerr << "qforge: unknown command '" << help_topic << "'\n";
        return 1;
    }
    for (const auto& c : commands) {
        if (c.app->parsed()) return c.run();
    }
    std::cout << app.help();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const qforge::Error& e) {
        std::fflush(stdout);
        std::cerr << "qforge: " << e.what() << "\n";
        return static_cast<int>(e.code());
    } catch (const std::bad_alloc&) {
        std::cerr << "qforge: out of memory\n";
        return static_cast<int>(qforge::ExitCode::resource);
    } catch (const std::exception& e) {
        std::cerr << "qforge: internal error: " << e.what() << "\n";
        return 4;
    }
}
