// hldlab: the command line. Results go to stdout, diagnostics to stderr.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
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
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "hldlab/runtime/compare.hpp"
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
  static const std::pair<const char*, double> units[] = {{"GiB", 1024.0 * 1024 * 1024},
                                                         {"MiB", 1024.0 * 1024},
                                                         {"KiB", 1024.0},
                                                         {"GB", 1e9},
                                                         {"MB", 1e6},
                                                         {"KB", 1e3}};
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

/// What `hldlab info --json` prints: what tools (the dashboard generator) need of a lesson.
nlohmann::json info_json(const LessonInfo& info) {
  nlohmann::json out = {{"name", info.name},
                        {"title", info.title},
                        {"problem", info.problem},
                        {"fix", info.fix},
                        {"variants", nlohmann::json::array()},
                        {"figures", nlohmann::json::array()},
                        {"metrics", nlohmann::json::array()},
                        {"faults", nlohmann::json::array()}};
  for (const auto& v : info.variants)
    out["variants"].push_back({{"name", v.name}, {"naive", v.naive}, {"summary", v.summary}});
  for (const auto& f : info.figures)
    out["figures"].push_back({{"name", f.name}, {"unit", unit_name(f.unit)}, {"doc", f.doc}});
  for (const auto& m : info.metrics) {
    const bool counter = m.kind == MetricSpec::Kind::counter;
    out["metrics"].push_back(
        {{"name", "hldlab_" + info.name + "_" + m.name + (counter ? "_total" : "")},
         {"kind", counter ? "counter" : "gauge"},
         {"label", m.label},
         {"help", m.help}});
  }
  for (const auto& f : info.faults) out["faults"].push_back({{"name", f.name}, {"doc", f.doc}});
  return out;
}

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
                << (p.default_value.is_nil()
                        ? ", required"
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

/// A JSON file, or BadInput naming it.
nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw BadInput("cannot read '" + path + "': " + std::strerror(errno));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw BadInput("'" + path + "' is not JSON: " + e.what());
  }
}

/// "5%" or "0.05" as a fraction.
double parse_threshold(const std::string& text) {
  if (!text.empty() && text.back() == '%')
    return parse_number(text.substr(0, text.size() - 1), "--threshold", 0, 1e6) / 100;
  return parse_number(text, "--threshold", 0, 1e4);
}

/// Prints the comparison of two result files; 1 on a regression, else 0.
int print_comparison(const nlohmann::json& base, const nlohmann::json& now, double threshold,
                     bool all, const std::string& base_name) {
  Comparison c;
  try {
    c = compare_results(base, now, threshold, all);
  } catch (const std::invalid_argument& e) {
    throw BadInput(e.what());
  }
  std::cout << "\n== compared with " << base_name << " (threshold " << threshold * 100 << "%)\n"
            << c.table << c.compared << " figures compared, " << c.beyond
            << " changed beyond the threshold, " << c.regressions << " regressions\n";
  return c.regressions > 0 ? 1 : 0;
}

// ---- commands -----------------------------------------------------------------------------------

/// What `run` and `tour` share, as typed on the command line.
struct RunFlags {
  std::string seed, json_path, timeline_path, max_instructions = "2000000000", pace = "0", metrics,
                                              memory;
  std::string timeout = "1h", jobs;
  std::string baseline, threshold = "5%";  ///< run --baseline: diff the results against a file
  std::string report_path;                 // --report: the HTML report
  bool quiet = false;                      // --quiet: no progress line
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
      throw BadInput(
          "--metrics needs HOST:PORT or PORT (e.g. 127.0.0.1:9464, or 0 for a free port)");
    s.exporter = std::make_unique<MetricsExporter>(flags.metrics);  // may throw ExporterError
    std::cerr << "hldlab: serving metrics on " << s.exporter->url() << std::endl;
    s.options.on_run_start = [exporter = s.exporter.get()](const std::shared_ptr<Experiment>& e) {
      exporter->collector().add(e);
    };
  }
  if (Progress::wanted(flags.quiet)) {
    s.progress = std::make_unique<Progress>(s.options.pace);
    s.options.on_run_start = [progress = s.progress.get(),
                              then = s.options.on_run_start](const std::shared_ptr<Experiment>& e) {
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
  if (!flags.baseline.empty() && result.error.empty()) {
    const int diff = print_comparison(read_json(flags.baseline), to_json(result),
                                      parse_threshold(flags.threshold), false, flags.baseline);
    return std::max(result.exit_code(), diff);
  }
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
  std::deque<ScriptResult> kept;                                       // for --report
  std::vector<ReportSection> sections;
  Watchdog watchdog(s.timeout_seconds);
  for (const auto& name : registry.names()) {
    const std::string path = script_dir + "/" + name + ".lua";
    if (!fs::exists(path, ec)) {
      rows.push_back({name, "-", "NO SCRIPT", "-", "no " + path});
      sections.push_back(
          {name, registry.get(name).lesson->info().title, "NO SCRIPT", "-", "no " + path, nullptr});
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

/// The shard of `hldlab sweep`: --shard i/N, or --shards N with the index from the batch
/// system (Kubernetes Indexed Jobs: JOB_COMPLETION_INDEX; Slurm arrays: SLURM_ARRAY_TASK_ID
/// minus SLURM_ARRAY_TASK_MIN).
std::pair<std::size_t, std::size_t> parse_shard(const std::string& shard,
                                                const std::string& shards) {
  std::uint64_t index = 0, count = 1;
  if (!shard.empty()) {
    const auto slash = shard.find('/');
    if (slash == std::string::npos || !shards.empty())
      throw BadInput("--shard takes i/N (e.g. 2/8), without --shards");
    index = parse_unsigned(shard.substr(0, slash), "--shard's index");
    count = parse_unsigned(shard.substr(slash + 1), "--shard's count");
  } else if (!shards.empty()) {
    count = parse_unsigned(shards, "--shards");
    if (const char* k8s = std::getenv("JOB_COMPLETION_INDEX")) {
      index = parse_unsigned(k8s, "JOB_COMPLETION_INDEX");
    } else if (const char* slurm = std::getenv("SLURM_ARRAY_TASK_ID")) {
      index = parse_unsigned(slurm, "SLURM_ARRAY_TASK_ID");
      if (const char* min = std::getenv("SLURM_ARRAY_TASK_MIN")) {
        const std::uint64_t first = parse_unsigned(min, "SLURM_ARRAY_TASK_MIN");
        if (index < first) throw BadInput("SLURM_ARRAY_TASK_ID is below SLURM_ARRAY_TASK_MIN");
        index -= first;
      }
    } else {
      throw BadInput(
          "--shards N needs the shard index: --shard i/N, or JOB_COMPLETION_INDEX "
          "(Kubernetes) or SLURM_ARRAY_TASK_ID (Slurm) in the environment");
    }
  }
  if (count == 0 || index >= count)
    throw BadInput("shard " + std::to_string(index) + "/" + std::to_string(count) +
                   ": the index must be below the count (from 0)");
  return {index, count};
}

/// hldlab sweep: runs the script's sweeps (one shard of their runs) and writes the sweep JSON.
int sweep_command(const PluginRegistry& registry, const std::string& script, RunSettings& s,
                  const RunFlags& flags, std::pair<std::size_t, std::size_t> shard) {
  s.options.shard = shard;
  const bool partial = shard.second > 1;
  if (partial) s.options.print_reports = false;  // tables of one shard would mislead
  ScriptResult result;
  {
    Watchdog watchdog(s.timeout_seconds);
    result = run_script(resolve_script(script), registry, s.options);
  }
  if (!result.error.empty()) {
    spdlog::error("{}", result.error);
    return result.exit_code();
  }
  if (result.sweeps.empty()) throw BadInput(script + " has no lab.sweep: nothing to sweep");
  nlohmann::json out = {{"sweeps", to_json(result.sweeps)}};
  std::size_t runs = 0;
  for (const auto& sw : result.sweeps) runs += sw.runs.size();
  if (partial) {
    out["shard"] = {{"index", shard.first}, {"count", shard.second}};
    std::cerr << "hldlab: shard " << shard.first << "/" << shard.second << " did " << runs
              << " runs of " << result.sweeps.size()
              << " sweep(s); merge the shards with hldlab merge (claims are checked by a whole "
                 "run)\n";
  }
  if (!flags.json_path.empty() && !write_json(flags.json_path, out)) return kExitEnvironment;
  return partial ? 0 : result.exit_code();
}

/// hldlab merge: the shards' sweep JSON files into one, identical to a single-process sweep.
int merge_command(const std::vector<std::string>& files, const std::string& json_path) {
  std::vector<std::vector<SweepResult>> parts;
  for (const auto& f : files) {
    const nlohmann::json j = read_json(f);
    if (!j.contains("sweeps") || !j["sweeps"].is_array())
      throw BadInput("'" + f + "' is not the output of hldlab sweep (no \"sweeps\")");
    std::vector<SweepResult> part;
    try {
      for (const auto& sw : j["sweeps"]) part.push_back(sweep_from_json(sw));
    } catch (const std::invalid_argument& e) {
      throw BadInput(f + ": " + e.what());
    }
    parts.push_back(std::move(part));
  }
  std::vector<SweepResult> merged;
  try {
    merged = merge_sweeps(parts);
  } catch (const std::invalid_argument& e) {
    throw BadInput(e.what());
  }
  for (const auto& sw : merged)
    (json_path == "-" ? std::cerr : std::cout) << format_sweep(sw) << "\n";
  if (!json_path.empty() && !write_json(json_path, {{"sweeps", to_json(merged)}}))
    return kExitEnvironment;
  return 0;
}

/// tour --seeds N: every lesson's script on N seeds, on the worker threads; per claim, on how
/// many seeds it held. A claim is known by where it is stated (file:line, and its order there).
int tour_seeds_command(const PluginRegistry& registry, const std::string& script_dir,
                       RunSettings& s, const RunFlags& flags, std::uint64_t seeds) {
  namespace fs = boost::filesystem;
  struct Job {
    std::string lesson, path;
    std::uint64_t seed;
    ScriptResult result;
  };
  std::vector<Job> jobs;
  const std::uint64_t first = s.options.seed.value_or(1);
  int exit_code = 0;
  for (const auto& name : registry.names()) {
    const std::string path = script_dir + "/" + name + ".lua";
    boost::system::error_code ec;
    if (!fs::exists(path, ec)) {
      std::cout << name << ": NO SCRIPT (" << path << ")\n";
      exit_code = 1;
      continue;
    }
    for (std::uint64_t k = 0; k < seeds; ++k) jobs.push_back({name, path, first + k, {}});
  }
  {
    Watchdog watchdog(s.timeout_seconds);
    ScriptOptions options = s.options;
    options.print_reports = false;
    options.jobs = 1;
    options.on_run_start = nullptr;  // no exporter or progress line across parallel scripts
    options.on_run_end = nullptr;
    std::atomic<std::size_t> next{0};
    std::vector<std::thread> threads;
    const unsigned workers = std::max(1u, std::min<unsigned>(s.options.jobs, jobs.size()));
    for (unsigned w = 0; w < workers; ++w)
      threads.emplace_back([&] {
        for (std::size_t i; (i = next++) < jobs.size() && !stop_requested();) {
          ScriptOptions mine = options;
          mine.seed = jobs[i].seed;
          jobs[i].result = run_script(jobs[i].path, registry, mine);
        }
      });
    for (auto& t : threads) t.join();
  }
  if (stop_requested())
    return stop_reason() == StopReason::interrupted ? kExitInterrupted : kExitBadInput;
  nlohmann::json all = nlohmann::json::object();
  std::cout << "=== hldlab tour on " << seeds << " seeds (" << first << ".." << first + seeds - 1
            << "): claims held on how many seeds\n";
  for (std::size_t i = 0; i < jobs.size();) {
    const std::string lesson = jobs[i].lesson;
    // Claims by (where, n-th at that place), in the order of the first seed's run.
    std::vector<std::string> order;
    std::map<std::string, std::pair<std::string, std::uint64_t>> held;  // key -> (message, seeds)
    std::vector<std::string> errors;
    for (; i < jobs.size() && jobs[i].lesson == lesson; ++i) {
      const ScriptResult& r = jobs[i].result;
      all[lesson][std::to_string(jobs[i].seed)] = to_json(r);
      exit_code = std::max(exit_code, r.exit_code());
      if (!r.error.empty())
        errors.push_back("seed " + std::to_string(jobs[i].seed) + ": " + r.error);
      std::map<std::string, int> nth;
      for (const auto& e : r.expectations) {
        if (!e.claim && e.passed) continue;  // sanity checks show only when they fail
        const std::string key = e.where + "#" + std::to_string(nth[e.where]++);
        auto [it, inserted] = held.try_emplace(key, (e.claim ? "" : "check: ") + e.message, 0);
        if (inserted) order.push_back(key);
        it->second.second += e.passed;
      }
    }
    std::cout << "\n" << lesson << "\n";
    for (const auto& key : order) {
      const auto& [message, n] = held[key];
      std::cout << "  " << (n == seeds ? "ok    " : "FAIL  ") << std::setw(4) << n << "/" << seeds
                << "  " << message
                << (n == seeds ? "" : "  (" + key.substr(0, key.rfind('#')) + ")") << "\n";
    }
    for (const auto& e : errors) std::cout << "  ERROR " << e << "\n";
  }
  if (!flags.json_path.empty() && !write_json(flags.json_path, all)) return kExitEnvironment;
  return exit_code;
}

void add_run_flags(CLI::App* cmd, RunFlags& f) {
  cmd->add_option("--seed", f.seed, "seed for every experiment (overrides the script's)");
  cmd->add_option("--json", f.json_path,
                  "also write the results as JSON to this file (- : stdout)");
  cmd->add_option("--timeline", f.timeline_path,
                  "also write every system's per-window figures as CSV to this file");
  cmd->add_option("--report", f.report_path,
                  "also write a self-contained HTML report (charts, claims) to this file");
  cmd->add_flag("--quiet", f.quiet, "no live progress line on the terminal");
  cmd->add_option("--pace", f.pace,
                  "0: as fast as possible; X: virtual time runs X times wall speed");
  cmd->add_option("--jobs", f.jobs,
                  "threads running the systems of an experiment (default: cores)");
  cmd->add_option("--timeout", f.timeout, "wall-clock limit, e.g. 30m (0: none; default 1h)");
  cmd->add_option(
      "--memory", f.memory,
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
  bool info_as_json = false;
  info->add_flag("--json", info_as_json,
                 "print it as JSON (name, variants, figures, metrics, faults)");

  RunFlags flags;
  auto* run = app.add_subcommand("run", "run a Lua experiment script");
  std::string script_path;
  run->add_option("script", script_path,
                  "the .lua script (else looked up in the installed scripts)")
      ->required();
  add_run_flags(run, flags);
  run->add_option("--baseline", flags.baseline,
                  "compare the results with this JSON file of an earlier run (as hldlab diff)");
  run->add_option("--threshold", flags.threshold, "with --baseline: e.g. 5% (default)");

  auto* tour =
      app.add_subcommand("tour", "run every lesson's experiment and print a verdict table");
  std::string script_dir;
  tour->add_option("--scripts", script_dir, "directory of the lesson scripts");
  std::string tour_seeds;
  tour->add_option("--seeds", tour_seeds,
                   "run every script on N seeds (from --seed, default 1) in parallel and show on "
                   "how many seeds each claim held");
  add_run_flags(tour, flags);

  auto* sweep = app.add_subcommand(
      "sweep", "run a script's lab.sweep points (or one shard of them) and write the sweep JSON");
  sweep->add_option("script", script_path, "the .lua script")->required();
  std::string shard, shards;
  sweep->add_option("--shard", shard, "i/N: run only shard i (from 0) of N");
  sweep->add_option("--shards", shards,
                    "N shards, the index from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID");
  add_run_flags(sweep, flags);

  auto* merge = app.add_subcommand("merge", "merge the JSON files of sweep shards into one");
  std::vector<std::string> merge_files;
  std::string merge_json;
  merge->add_option("parts", merge_files, "the shards' JSON files")->required();
  merge->add_option("--json", merge_json, "write the merged sweep JSON here (- : stdout)");

  auto* diff = app.add_subcommand(
      "diff", "compare two result files (run or tour --json): figures, changes, regressions");
  std::string diff_base, diff_new, diff_threshold = "5%";
  bool diff_all = false;
  diff->add_option("base", diff_base, "the baseline results (JSON)")->required();
  diff->add_option("new", diff_new, "the new results (JSON)")->required();
  diff->add_option("--threshold", diff_threshold,
                   "relative change that counts, e.g. 5% (default) or 0.05");
  diff->add_flag("--all", diff_all, "show every figure, not only those beyond the threshold");

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
      spdlog::error(
          "no command '{}' (commands: list, info, run, tour, sweep, merge, diff, "
          "new-lesson, version, help)",
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
      const LessonInfo& lesson_info = registry.get(lesson_name).lesson->info();
      if (info_as_json)
        std::cout << info_json(lesson_info).dump(2) << "\n";
      else
        print_info(lesson_info);
    } catch (const std::exception& e) {
      spdlog::error("{}", e.what());
      return kExitBadInput;
    }
    return 0;
  }

  try {
    if (*merge) return merge_command(merge_files, merge_json);
    if (*diff)
      return print_comparison(read_json(diff_base), read_json(diff_new),
                              parse_threshold(diff_threshold), diff_all, diff_base);
    if (!flags.baseline.empty()) parse_threshold(flags.threshold);  // bad input before a run
    RunSettings settings = settle(flags);
    if (*run) return run_command(registry, script_path, settings, flags);
    if (*sweep)
      return sweep_command(registry, script_path, settings, flags, parse_shard(shard, shards));
    if (!tour_seeds.empty()) {
      const std::uint64_t n = parse_unsigned(tour_seeds, "--seeds");
      if (n == 0 || n > 10000) throw BadInput("--seeds must be from 1 to 10000");
      return tour_seeds_command(registry, script_dir.empty() ? installed_script_dir() : script_dir,
                                settings, flags, n);
    }
    return tour_command(registry, script_dir, settings, flags);
  } catch (const ExporterError& e) {
    spdlog::error("{}", e.what());
    return kExitEnvironment;
  } catch (const std::invalid_argument& e) {
    spdlog::error("{}", e.what());
    return kExitBadInput;
  }
}
