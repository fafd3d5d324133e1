// hldlab: the command line. Results go to stdout, diagnostics to stderr.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/filesystem.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <thread>

#include "hldlab/runtime/exporter.hpp"
#include "hldlab/runtime/loader.hpp"
#include "hldlab/runtime/new_lesson.hpp"
#include "hldlab/runtime/params.hpp"
#include "hldlab/runtime/results.hpp"
#include "hldlab/runtime/script.hpp"

namespace {
using namespace hldlab;

// Exit codes, also documented in the README.
// 1: an expectation or a system failed (ScriptResult::exit_code).
constexpr int kExitBadInput = 2;
constexpr int kExitEnvironment = 3;

void print_info(const LessonInfo& info) {
  std::cout << info.name << " — " << info.title << "\n\nProblem: " << info.problem
            << "\nFix:     " << info.fix << "\n";
  if (!info.production.empty()) {
    std::cout << "In production:";
    for (const auto& p : info.production) std::cout << "\n  - " << p;
    std::cout << "\n";
  }
  std::cout << "\nVariants:\n";
  std::size_t width = 0;
  for (const auto& v : info.variants) width = std::max(width, v.name.size());
  for (const auto& v : info.variants)
    std::cout << "  " << std::left << std::setw(static_cast<int>(width)) << v.name
              << (v.naive ? "  [naive]  " : "  [fix]    ") << v.summary << "\n";
  auto print_params = [](const std::vector<ParamSpec>& params, const char* indent) {
    for (const auto& p : params)
      std::cout << indent << p.name << " (" << param_type_name(p.type) << ", default "
                << format_param_value(p, p.default_value) << "): " << p.doc << "\n";
  };
  std::cout << "\nParameters:\n";
  print_params(info.params, "  ");
  std::cout << "\nFaults (sys:inject):\n";
  for (const auto& f : info.faults) {
    std::cout << "  " << f.name << ": " << f.doc << "\n";
    print_params(f.params, "      ");
  }
  std::cout << "  generic faults that apply: "
            << (info.generic_faults.empty() ? std::string("none") : [&] {
                 std::string list;
                 for (const auto& f : info.generic_faults) list += (list.empty() ? "" : ", ") + f;
                 return list;
               }())
            << (info.uses_service_time ? "" : " (the lesson does not use the service time)")
            << "\n";
  if (!info.operations.empty()) {
    std::cout << "\nOperations (sys:call):\n";
    for (const auto& o : info.operations) {
      std::cout << "  " << o.name << ": " << o.doc << "\n";
      print_params(o.params, "      ");
    }
  }
  if (!info.figures.empty()) {
    std::cout << "\nFigures (results):\n";
    for (const auto& f : info.figures)
      std::cout << "  " << f.name << " (" << unit_name(f.unit) << "): " << f.doc << "\n";
  }
  if (!info.metrics.empty()) {
    std::cout << "\nMetrics:\n";
    for (const auto& m : info.metrics)
      std::cout << "  hldlab_" << info.name << "_" << m.name
                << (m.kind == MetricSpec::Kind::counter ? "_total" : "")
                << (m.label.empty() ? "" : "{" + m.label + "}") << ": " << m.help << "\n";
  }
}

std::string default_script_dir() {
  if (const char* env = std::getenv("HLDLAB_SCRIPT_DIR")) return env;
  namespace fs = boost::filesystem;
  const fs::path installed =
      boost::dll::program_location().parent_path() / ".." / "share" / "hldlab" / "scripts";
  boost::system::error_code ec;
  if (fs::is_directory(installed, ec)) return installed.lexically_normal().string();
  return HLDLAB_SOURCE_SCRIPT_DIR;
}

/// Write JSON; failure is reported but the results were already printed.
bool write_json(const std::string& path, const nlohmann::json& json) {
  std::ofstream out(path);
  if (out) out << json.dump(2) << "\n";
  if (!out) {
    spdlog::error("cannot write the JSON results to '{}': {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

struct TourRow {
  std::string lesson, claims, verdict, time, headline;
};

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("hldlab");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^%l%$: %v");

  CLI::App app{"hldlab: system-design concepts as executable, measurable experiments"};
  app.require_subcommand(1);
  std::vector<std::string> plugin_dirs;
  std::string log_level = "warn";
  app.add_option("--plugins", plugin_dirs,
                 "plugin directory (repeatable; else HLDLAB_PLUGIN_PATH, else the built-in one)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  auto* list = app.add_subcommand("list", "list the lessons and their variants");
  auto* info = app.add_subcommand(
      "info", "show a lesson: problem, fix, variants, parameters, faults, metrics");
  std::string lesson_name;
  info->add_option("lesson", lesson_name, "lesson name")->required();

  auto* run = app.add_subcommand("run", "run a Lua experiment script");
  std::string script_path, json_path;
  std::optional<std::uint64_t> seed;
  double pace = 0;
  std::uint64_t budget = 2'000'000'000;
  std::string metrics_address;
  double hold = 0;
  run->add_option("script", script_path, "the .lua script")->required();
  for (auto* cmd : {run}) {
    cmd->add_option("--seed", seed, "seed for every experiment (overrides the script's)");
    cmd->add_option("--json", json_path, "also write the results as JSON to this file");
    cmd->add_option("--max-instructions", budget, "Lua instruction budget");
  }

  auto* tour =
      app.add_subcommand("tour", "run every lesson's experiment and print a verdict table");
  std::string script_dir;
  tour->add_option("--scripts", script_dir, "directory of the lesson scripts");
  tour->add_option("--seed", seed, "seed for every experiment");
  tour->add_option("--json", json_path, "also write every result as JSON to this file");
  for (auto* cmd : {run, tour}) {
    cmd->add_option("--pace", pace,
                    "0: as fast as possible; X: virtual time runs X times wall speed")
        ->check(CLI::Range(0.0, 1e6));
    auto* metrics = cmd->add_option("--metrics", metrics_address,
                                    "serve Prometheus metrics on HOST:PORT (HOST defaults to "
                                    "127.0.0.1; port 0 picks a free one)");
    cmd->add_option("--hold", hold, "keep the metrics endpoint up this many seconds after the run")
        ->check(CLI::Range(0.0, 86400.0))
        ->needs(metrics);
  }

  auto* new_lesson =
      app.add_subcommand("new-lesson", "scaffold plugins/NAME/ and scripts/NAME.lua");
  std::string new_name, root = ".", standalone_dir;
  new_lesson->add_option("name", new_name, "lesson name (lowercase, digits, _)")->required();
  auto* root_option = new_lesson->add_option("--root", root, "the hldlab source tree");
  new_lesson
      ->add_option("--standalone", standalone_dir,
                   "instead, a plugin project in DIR built against an installed hldlab")
      ->excludes(root_option);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitBadInput;
  }
  spdlog::set_level(spdlog::level::from_str(log_level));

  if (*new_lesson) {
    try {
      const bool standalone = !standalone_dir.empty();
      for (const auto& f : standalone ? create_standalone_lesson(new_name, standalone_dir)
                                      : create_lesson_skeleton(new_name, root))
        std::cout << "created " << f << "\n";
      if (standalone)
        std::cout << "next: see " << standalone_dir << "/README.md (build against an installed "
                  << "hldlab, cmake --install, hldlab run " << new_name << ".lua)\n";
      else
        std::cout << "next: rebuild (cmake --build build), then ./build/hldlab run scripts/"
                  << new_name << ".lua\n";
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return kExitBadInput;
    }
    return 0;
  }

  PluginRegistry registry;
  const auto dirs = plugin_directories(plugin_dirs);
  if (dirs.empty())
    spdlog::warn("no plugin directory found (use --plugins DIR or HLDLAB_PLUGIN_PATH)");
  for (const auto& d : dirs) registry.load_directory(d);
  for (const auto& e : registry.errors()) spdlog::warn("plugin refused: {}", e);

  if (*list) {
    for (const auto& name : registry.names()) {
      const LessonInfo& i = registry.get(name).lesson->info();
      std::cout << name << "  —  " << i.title << "\n    variants:";
      for (const auto& v : i.variants) std::cout << " " << v.name << (v.naive ? " (naive)" : "");
      std::cout << "\n";
    }
    if (registry.names().empty()) std::cout << "(no lessons loaded)\n";
    return 0;
  }

  if (*info) {
    try {
      print_info(registry.get(lesson_name).lesson->info());
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return kExitBadInput;
    }
    return 0;
  }

  ScriptOptions options;
  options.seed = seed;
  options.pace = pace;
  options.instruction_budget = budget;

  // Metrics: the endpoint lives until main returns; --hold keeps it up after the run so that
  // Prometheus takes its last scrape of the final values.
  std::unique_ptr<MetricsExporter> exporter;
  if (!metrics_address.empty()) {
    try {
      exporter = std::make_unique<MetricsExporter>(metrics_address);
    } catch (const std::invalid_argument& e) {
      spdlog::error("{}", e.what());
      return kExitBadInput;
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return kExitEnvironment;
    }
    std::cerr << "hldlab: serving metrics on " << exporter->url() << std::endl;
    options.on_run_start = [&exporter](const std::shared_ptr<Experiment>& e) {
      exporter->collector().add(e);
    };
  }
  auto hold_endpoint = [&] {
    if (!exporter || hold <= 0) return;
    std::cerr << "hldlab: holding " << exporter->url() << " for " << hold << " s" << std::endl;
    std::this_thread::sleep_for(std::chrono::duration<double>(hold));
  };

  if (*run) {
    const ScriptResult result = run_script(script_path, registry, options);
    if (!result.error.empty()) spdlog::error("{}", result.error);
    if (result.failed_expectation()) spdlog::error("some expectations failed");
    if (result.failed_system()) spdlog::error("some systems failed during the run");
    const bool json_ok = json_path.empty() || write_json(json_path, to_json(result));
    hold_endpoint();
    return json_ok ? result.exit_code() : kExitEnvironment;
  }

  // tour
  if (script_dir.empty()) script_dir = default_script_dir();
  std::vector<TourRow> rows;
  nlohmann::json all = nlohmann::json::object();
  int exit_code = 0;
  for (const auto& name : registry.names()) {
    const std::string path = script_dir + "/" + name + ".lua";
    if (!boost::filesystem::exists(path)) {
      rows.push_back({name, "-", "NO SCRIPT", "-", "no " + path});
      continue;
    }
    std::cout << "\n### " << name << " — " << registry.get(name).lesson->info().title << "\n";
    const double start = wall_seconds();
    const ScriptResult result = run_script(path, registry, options);
    char took[32];
    std::snprintf(took, sizeof took, "%.1fs", wall_seconds() - start);
    all[name] = to_json(result);
    std::size_t passed = 0, claims = 0;
    for (const auto& e : result.expectations)
      if (e.claim) ++claims, passed += e.passed;
    TourRow row{name, std::to_string(passed) + "/" + std::to_string(claims),
                result.exit_code() == 0 ? "PASS"
                : result.error.empty()  ? "FAIL"
                                        : "ERROR",
                took, ""};
    // The headline: the first failed expectation, else the claim marked headline, else the
    // first claim.
    const Expectation* shown = nullptr;
    for (const auto& e : result.expectations)
      if (!e.passed) {
        shown = &e;
        break;
      } else if (e.claim && (!shown || (e.headline && !shown->headline))) {
        shown = &e;
      }
    if (shown) row.headline = shown->message;
    if (!result.error.empty()) {
      spdlog::error("{}", result.error);
      row.headline = result.error;
    }
    exit_code = std::max(exit_code, result.exit_code());
    rows.push_back(row);
  }
  std::cout << "\n=== hldlab tour: " << rows.size() << " lessons\n";
  const std::vector<std::string> header = {"lesson", "claims", "verdict", "time", "headline"};
  std::vector<std::size_t> width;
  for (const auto& h : header) width.push_back(h.size());
  for (const auto& r : rows)
    for (const auto& [i, cell] : {std::pair<int, const std::string*>{0, &r.lesson},
                                  {1, &r.claims},
                                  {2, &r.verdict},
                                  {3, &r.time}})
      width[i] = std::max(width[i], cell->size());
  auto line = [&](const std::vector<std::string>& cells) {
    for (std::size_t i = 0; i < cells.size(); ++i)
      std::cout << cells[i]
                << (i + 1 < cells.size() ? std::string(width[i] - cells[i].size() + 2, ' ') : "");
    std::cout << "\n";
  };
  line(header);
  for (const auto& r : rows) line({r.lesson, r.claims, r.verdict, r.time, r.headline});
  const bool json_ok = json_path.empty() || write_json(json_path, all);
  hold_endpoint();
  if (!json_ok) return kExitEnvironment;
  return exit_code;
}
