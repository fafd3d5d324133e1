// hldlab: the command line. Results go to stdout, diagnostics to stderr.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/filesystem.hpp>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>
#include <mutex>
#include <thread>

#include "hldlab/runtime/exporter.hpp"
#include "hldlab/runtime/loader.hpp"
#include "hldlab/runtime/new_lesson.hpp"
#include "hldlab/runtime/params.hpp"
#include "hldlab/runtime/progress.hpp"
#include "hldlab/runtime/report.hpp"
#include "hldlab/runtime/results.hpp"
#include "hldlab/runtime/script.hpp"
#include "hldlab/runtime/stop.hpp"
#include "hldlab/runtime/workers.hpp"

#ifndef HLDLAB_VERSION
#define HLDLAB_VERSION "0.0.0"
#endif

namespace {
using namespace hldlab;

// Exit codes, also documented in the README.
// 1: an expectation or a system failed (ScriptResult::exit_code).
constexpr int kExitBadInput = 2;
constexpr int kExitEnvironment = 3;
constexpr int kExitInterrupted = 130;

/// A command-line value that is wrong: reported as one line, exit code 2.
struct BadInput : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// ---- strict parsing of the numeric flags (CLI11 would saturate or accept NaN) ----------------

std::uint64_t parse_unsigned(const std::string& text, const std::string& flag) {
  const bool digits = !text.empty() && text.size() <= 20 &&
                      text.find_first_not_of("0123456789") == std::string::npos;
  errno = 0;
  char* end = nullptr;
  const unsigned long long v = digits ? std::strtoull(text.c_str(), &end, 10) : 0;
  if (!digits || errno == ERANGE || *end != '\0')
    throw BadInput(flag + " must be a whole number from 0 to 18446744073709551615, not '" + text +
                   "'");
  return v;
}

double parse_number(const std::string& text, const std::string& flag, double lo, double hi) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !std::isfinite(v) || v < lo || v > hi) {
    std::ostringstream msg;
    msg << flag << " must be a number from " << lo << " to " << hi << ", not '" << text << "'";
    throw BadInput(msg.str());
  }
  return v;
}

/// "4GiB", "512MiB", "2e9" (bytes).
double parse_bytes(const std::string& text, const std::string& flag) {
  static const std::pair<const char*, double> units[] = {
      {"GiB", 1024.0 * 1024 * 1024}, {"MiB", 1024.0 * 1024}, {"KiB", 1024.0},
      {"GB", 1e9},                   {"MB", 1e6},            {"KB", 1e3}};
  for (const auto& [unit, scale] : units) {
    const std::string u = unit;
    if (text.size() > u.size() && text.compare(text.size() - u.size(), u.size(), u) == 0)
      return scale * parse_number(text.substr(0, text.size() - u.size()), flag, 1e-9, 1e9);
  }
  return parse_number(text, flag, 1e6, 1e15);
}

// ---- signals and the wall-clock limit ---------------------------------------------------------

extern "C" void on_signal(int) {
  if (stop_requested()) _exit(kExitInterrupted);  // the second one: at once
  request_stop(StopReason::interrupted);
  static const char note[] = "\nhldlab: interrupted: stopping (press Ctrl-C again to quit now)\n";
  [[maybe_unused]] const auto ignored = write(STDERR_FILENO, note, sizeof note - 1);
}

void install_signal_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  // `hldlab run x.lua | head -1`: writing to the closed pipe fails instead of killing us, so the
  // run finishes and the --json file is still written.
  std::signal(SIGPIPE, SIG_IGN);
}

/// Stops the run when `limit` seconds of wall-clock time have passed (a cooperative stop, so
/// the results so far are reported); if the run does not stop within a grace period (a Lua
/// pattern that backtracks for ever inside C), exits with code 2.
class Watchdog {
 public:
  explicit Watchdog(double limit_seconds) {
    if (limit_seconds <= 0) return;
    thread_ = std::thread([this, limit_seconds] {
      std::unique_lock<std::mutex> lock(mutex_);
      if (done_cv_.wait_for(lock, std::chrono::duration<double>(limit_seconds),
                            [this] { return done_; }))
        return;
      request_stop(StopReason::timeout);
      std::cerr << "hldlab: the run exceeded --timeout " << limit_seconds << "s: stopping"
                << std::endl;
      if (done_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return done_; })) return;
      std::cerr << "hldlab: the run did not stop within 5 s of the time limit; exiting"
                << std::endl;
      _exit(kExitBadInput);
    });
  }
  ~Watchdog() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    done_cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable done_cv_;
  bool done_ = false;
  std::thread thread_;
};

// ---- output -------------------------------------------------------------------------------------

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
      std::cout << indent << p.name << " (" << param_type_name(p.type)
                << (p.default_value.is_nil() ? ", required"
                                             : ", default " + format_param_value(p, p.default_value))
                << "): " << p.doc << "\n";
  };
  std::cout << "\nParameters:\n";
  print_params(info.params, "  ");
  std::cout << "\nFaults (sys:inject):\n";
  for (const auto& f : info.faults) {
    std::cout << "  " << f.name << ": " << f.doc << "\n";
    print_params(f.params, "      ");
  }
  std::string generic;
  for (const auto& f : info.generic_faults) generic += (generic.empty() ? "" : ", ") + f;
  std::cout << "  generic faults that apply: " << (generic.empty() ? "none" : generic)
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

std::string installed_script_dir() {
  if (const char* env = std::getenv("HLDLAB_SCRIPT_DIR")) return env;
  namespace fs = boost::filesystem;
  const fs::path installed =
      boost::dll::program_location().parent_path() / ".." / "share" / "hldlab" / "scripts";
  boost::system::error_code ec;
  if (fs::is_directory(installed, ec)) return installed.lexically_normal().string();
  return HLDLAB_SOURCE_SCRIPT_DIR;
}

/// A script path as given, or else `scripts/x.lua` / `x.lua` from the installed scripts.
std::string resolve_script(const std::string& path) {
  namespace fs = boost::filesystem;
  boost::system::error_code ec;
  if (fs::exists(path, ec)) return path;
  const fs::path name = fs::path(path).filename();
  const fs::path installed = fs::path(installed_script_dir()) / name;
  if (fs::exists(installed, ec)) return installed.string();
  throw BadInput("no script '" + path + "' (nor " + installed.string() + ")");
}

/// Write text to `path`; failure is reported (the results were printed anyway).
bool write_file(const std::string& path, const std::string& text, const char* what) {
  std::ofstream out(path);
  if (out) out << text;
  if (!out) {
    spdlog::error("cannot write the {} to '{}': {}", what, path, std::strerror(errno));
    return false;
  }
  return true;
}

/// Write JSON to `path` ("-": stdout); failure is reported but the results were printed.
bool write_json(const std::string& path, const nlohmann::json& json) {
  if (path == "-") {
    std::cout << json.dump(2) << std::endl;
    return true;
  }
  std::ofstream out(path);
  if (out) out << json.dump(2) << "\n";
  if (!out) {
    spdlog::error("cannot write the JSON results to '{}': {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// ---- commands -----------------------------------------------------------------------------------

/// What `run` and `tour` share, as typed on the command line.
struct RunFlags {
  std::string seed, json_path, timeline_path, max_instructions = "2000000000", pace = "0", metrics,
      memory;
  std::string timeout = "1h", jobs;
  std::string report_path;  // --report: the HTML report
  bool quiet = false;       // --quiet: no progress line
  std::vector<std::string> data_dirs;
  double hold = 0;
  bool metrics_given = false;
};

/// The validated form of RunFlags.
struct RunSettings {
  ScriptOptions options;
  double timeout_seconds = 0;
  std::unique_ptr<MetricsExporter> exporter;
  std::unique_ptr<Progress> progress;  // the live progress line (a terminal, no --quiet)
};

RunSettings settle(const RunFlags& flags) {
  RunSettings s;
  if (!flags.seed.empty()) s.options.seed = parse_unsigned(flags.seed, "--seed");
  s.options.instruction_budget = parse_unsigned(flags.max_instructions, "--max-instructions");
  if (s.options.instruction_budget == 0) throw BadInput("--max-instructions must be positive");
  s.options.pace = parse_number(flags.pace, "--pace", 0, 1e6);
  s.options.jobs = flags.jobs.empty()
                       ? hardware_threads()
                       : static_cast<unsigned>(parse_number(flags.jobs, "--jobs", 1, 1024));
  if (!flags.memory.empty()) s.options.memory_budget = parse_bytes(flags.memory, "--memory");
  s.timeout_seconds = flags.timeout == "0" ? 0 : to_seconds(parse_duration(flags.timeout));
  if (flags.json_path == "-") s.options.reports_to_stderr = true;
  s.options.data_dirs = flags.data_dirs;
  if (flags.metrics_given) {
    if (flags.metrics.empty())
      throw BadInput("--metrics needs HOST:PORT or PORT (e.g. 127.0.0.1:9464, or 0 for a free port)");
    s.exporter = std::make_unique<MetricsExporter>(flags.metrics);  // may throw ExporterError
    std::cerr << "hldlab: serving metrics on " << s.exporter->url() << std::endl;
    s.options.on_run_start = [exporter = s.exporter.get()](const std::shared_ptr<Experiment>& e) {
      exporter->collector().add(e);
    };
  }
  if (Progress::wanted(flags.quiet)) {
    s.progress = std::make_unique<Progress>(s.options.pace);
    s.options.on_run_start = [progress = s.progress.get(), then = s.options.on_run_start](
                                 const std::shared_ptr<Experiment>& e) {
      if (then) then(e);
      progress->start(e);
    };
    s.options.on_run_end = [progress = s.progress.get()](const std::shared_ptr<Experiment>&) {
      progress->finish();
    };
  }
  return s;
}

/// The metrics endpoint stays up --hold seconds after the run, for a last scrape.
void hold_endpoint(const RunSettings& s, double hold) {
  if (!s.exporter || hold <= 0 || stop_requested()) return;
  std::cerr << "hldlab: holding " << s.exporter->url() << " for " << hold << " s" << std::endl;
  const double until = wall_seconds() + hold;
  while (wall_seconds() < until && !stop_requested())
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
}

int run_command(const PluginRegistry& registry, const std::string& script, RunSettings& s,
                const RunFlags& flags) {
  const std::string path = resolve_script(script);
  ScriptResult result;
  {
    Watchdog watchdog(s.timeout_seconds);
    result = run_script(path, registry, s.options);
  }
  if (!result.error.empty()) spdlog::error("{}", result.error);
  if (result.failed_expectation()) spdlog::error("some expectations failed");
  if (result.failed_system()) spdlog::error("some systems failed during the run");
  bool written = flags.json_path.empty() || write_json(flags.json_path, to_json(result));
  if (!flags.timeline_path.empty())
    written &= write_file(flags.timeline_path, timeline_csv(result.experiments), "timeline CSV");
  if (!flags.report_path.empty()) {
    const std::string name = boost::filesystem::path(path).stem().string();
    written &= write_file(flags.report_path,
                          render_report("hldlab: " + name, {{name, "", "", "", "", &result}}),
                          "HTML report");
  }
  hold_endpoint(s, flags.hold);
  if (!written && result.exit_code() == 0) return kExitEnvironment;
  return result.exit_code();
}

struct TourRow {
  std::string lesson, claims, verdict, time, headline;
};

int tour_command(const PluginRegistry& registry, std::string script_dir, RunSettings& s,
                 const RunFlags& flags) {
  namespace fs = boost::filesystem;
  if (script_dir.empty()) script_dir = installed_script_dir();
  boost::system::error_code ec;
  if (!fs::is_directory(script_dir, ec)) throw BadInput("--scripts: no directory " + script_dir);
  std::vector<TourRow> rows;
  nlohmann::json all = nlohmann::json::object();
  std::vector<ExperimentResult> experiments;
  int exit_code = 0;
  std::ostream& out = flags.json_path == "-" ? std::cerr : std::cout;  // stdout carries JSON
  std::deque<ScriptResult> kept;  // for --report
  std::vector<ReportSection> sections;
  Watchdog watchdog(s.timeout_seconds);
  for (const auto& name : registry.names()) {
    const std::string path = script_dir + "/" + name + ".lua";
    if (!fs::exists(path, ec)) {
      rows.push_back({name, "-", "NO SCRIPT", "-", "no " + path});
      sections.push_back({name, registry.get(name).lesson->info().title, "NO SCRIPT", "-",
                          "no " + path, nullptr});
      exit_code = std::max(exit_code, 1);
      continue;
    }
    if (stop_requested()) break;
    out << "\n### " << name << " — " << registry.get(name).lesson->info().title << "\n";
    const double start = wall_seconds();
    const ScriptResult result = run_script(path, registry, s.options);
    char took[32];
    std::snprintf(took, sizeof took, "%.1fs", wall_seconds() - start);
    all[name] = to_json(result);
    experiments.insert(experiments.end(), result.experiments.begin(), result.experiments.end());
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
    if (!flags.report_path.empty()) {
      kept.push_back(result);
      sections.push_back({name, registry.get(name).lesson->info().title, row.verdict, row.claims,
                          row.headline, &kept.back()});
    }
  }
  out << "\n=== hldlab tour: " << rows.size() << " lessons\n";
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
      out << cells[i]
                << (i + 1 < cells.size() ? std::string(width[i] - cells[i].size() + 2, ' ') : "");
    out << "\n";
  };
  line(header);
  for (const auto& r : rows) line({r.lesson, r.claims, r.verdict, r.time, r.headline});
  bool written = flags.json_path.empty() || write_json(flags.json_path, all);
  if (!flags.report_path.empty()) {
    const bool ok =
        write_file(flags.report_path, render_report("hldlab tour", sections), "HTML report");
    if (ok) out << "\nreport: " << flags.report_path << "\n";
    written &= ok;
  }
  if (!flags.timeline_path.empty())
    written &= write_file(flags.timeline_path, timeline_csv(experiments), "timeline CSV");
  hold_endpoint(s, flags.hold);
  if (stop_requested())
    return stop_reason() == StopReason::interrupted ? kExitInterrupted : kExitBadInput;
  if (!written && exit_code == 0) return kExitEnvironment;
  return exit_code;
}

void add_run_flags(CLI::App* cmd, RunFlags& f) {
  cmd->add_option("--seed", f.seed, "seed for every experiment (overrides the script's)");
  cmd->add_option("--json", f.json_path, "also write the results as JSON to this file (- : stdout)");
  cmd->add_option("--timeline", f.timeline_path,
                  "also write every system's per-window figures as CSV to this file");
  cmd->add_option("--report", f.report_path,
                  "also write a self-contained HTML report (charts, claims) to this file");
  cmd->add_flag("--quiet", f.quiet, "no live progress line on the terminal");
  cmd->add_option("--pace", f.pace, "0: as fast as possible; X: virtual time runs X times wall speed");
  cmd->add_option("--jobs", f.jobs, "threads running the systems of an experiment (default: cores)");
  cmd->add_option("--timeout", f.timeout, "wall-clock limit, e.g. 30m (0: none; default 1h)");
  cmd->add_option("--memory", f.memory,
                  "memory budget for queued work per experiment, e.g. 4GiB (default: half the RAM)");
  cmd->add_option("--max-instructions", f.max_instructions, "Lua instruction budget");
  cmd->add_option("--data", f.data_dirs,
                  "a directory scripts may read traces from (repeatable; nothing else is opened)");
  auto* metrics = cmd->add_option("--metrics", f.metrics,
                                  "serve Prometheus metrics on HOST:PORT (HOST defaults to "
                                  "127.0.0.1; port 0 picks a free one)");
  cmd->add_option("--hold", f.hold, "keep the metrics endpoint up this many seconds after the run")
      ->check(CLI::Range(0.0, 86400.0))
      ->needs(metrics);
  cmd->callback([&f, metrics] { f.metrics_given = metrics->count() > 0; });
}

}  // namespace

int main(int argc, char** argv) {
  auto logger = spdlog::stderr_color_mt("hldlab");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%^%l%$: %v");
  install_signal_handlers();

  CLI::App app{"hldlab: system-design concepts as executable, measurable experiments"};
  app.require_subcommand(0, 1);
  app.fallthrough();  // global flags also after the subcommand: hldlab run x.lua --log-level info
  app.set_version_flag("--version", std::string("hldlab ") + HLDLAB_VERSION);
  std::vector<std::string> plugin_dirs;
  std::string log_level = "warn";
  app.add_option("--plugins", plugin_dirs,
                 "plugin file or directory (repeatable; else HLDLAB_PLUGIN_PATH, else the "
                 "built-in one)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error or off")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "off"}));

  auto* version = app.add_subcommand("version", "print the version");
  auto* help = app.add_subcommand("help", "help on a command: hldlab help run");
  std::string help_topic;
  help->add_option("command", help_topic, "a command");
  auto* list = app.add_subcommand("list", "list the lessons and their variants");
  auto* info = app.add_subcommand(
      "info", "show a lesson: problem, fix, variants, parameters, faults, figures, metrics");
  std::string lesson_name;
  info->add_option("lesson", lesson_name, "lesson name")->required();

  RunFlags flags;
  auto* run = app.add_subcommand("run", "run a Lua experiment script");
  std::string script_path;
  run->add_option("script", script_path, "the .lua script (else looked up in the installed scripts)")
      ->required();
  add_run_flags(run, flags);

  auto* tour =
      app.add_subcommand("tour", "run every lesson's experiment and print a verdict table");
  std::string script_dir;
  tour->add_option("--scripts", script_dir, "directory of the lesson scripts");
  add_run_flags(tour, flags);

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

  if (*version) {
    std::cout << "hldlab " << HLDLAB_VERSION << "\n";
    return 0;
  }
  if (*help || app.get_subcommands().empty()) {
    if (help_topic.empty()) {
      std::cout << app.help();
      return *help ? 0 : kExitBadInput;
    }
    try {
      std::cout << app.get_subcommand(help_topic)->help();
      return 0;
    } catch (const CLI::OptionNotFound&) {
      spdlog::error("no command '{}' (commands: list, info, run, tour, new-lesson, version, help)",
                    help_topic);
      return kExitBadInput;
    }
  }

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

  try {
    RunSettings settings = settle(flags);
    if (*run) return run_command(registry, script_path, settings, flags);
    return tour_command(registry, script_dir, settings, flags);
  } catch (const ExporterError& e) {
    spdlog::error("{}", e.what());
    return kExitEnvironment;
  } catch (const std::invalid_argument& e) {
    spdlog::error("{}", e.what());
    return kExitBadInput;
  }
}
