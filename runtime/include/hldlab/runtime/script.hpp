/// @file script.hpp
/// @brief Running a Lua experiment script in a sandbox.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hldlab/runtime/experiment.hpp"
#include "hldlab/runtime/loader.hpp"
#include "hldlab/runtime/stop.hpp"
#include "hldlab/runtime/sweep.hpp"

namespace hldlab {

struct ScriptOptions {
  std::optional<std::uint64_t> seed;                 ///< overrides every experiment's seed
  double pace = 0;                                   ///< see RunOptions
  unsigned jobs = 1;                                 ///< see RunOptions
  double memory_budget = 0;                          ///< see ExperimentConfig
  /// Directories a script may read traces from (--data): nothing else is opened.
  std::vector<std::string> data_dirs;
  /// (n, label): in the n-th experiment run (from 0), run only the system `label`.
  std::optional<std::pair<std::size_t, std::string>> run_alone;
  std::uint64_t instruction_budget = 2'000'000'000;  ///< Lua VM instructions before aborting
  std::size_t memory_limit = std::size_t{1} << 30;   ///< bytes the Lua state may allocate
  bool print_reports = true;  ///< lab.report prints to stdout (the tour collects them instead)
  bool reports_to_stderr = false;  ///< print them to stderr instead (stdout carries JSON)
  /// Called when an experiment starts running (the metrics exporter registers it).
  std::function<void(const std::shared_ptr<Experiment>&)> on_run_start;
  /// Called when it has run (or failed to): the progress line clears itself.
  std::function<void(const std::shared_ptr<Experiment>&)> on_run_end;
  /// (i, N): every lab.sweep does only its runs r with r % N == i (hldlab sweep --shard i/N).
  std::pair<std::size_t, std::size_t> shard{0, 1};
  /// Internal: this Lua state is worker `worker` of `workers` for the script's sweep number
  /// `sweep`; the sweeps before it return `earlier` without running.
  struct SweepWorker {
    std::size_t sweep = 0, worker = 0, workers = 1;
    std::vector<SweepResult> earlier;
  };
  std::shared_ptr<const SweepWorker> sweep_worker;
};

struct Expectation {
  std::string message, where;
  bool passed = false;
  bool claim = true;      ///< lab.expect: a claim; lab.check: a sanity check
  bool headline = false;  ///< lab.expect(cond, msg, { headline = true }): the tour shows it
};

struct ScriptResult {
  std::vector<ExperimentResult> experiments;  ///< those outside sweeps, in the order they ran
  std::vector<SweepResult> sweeps;            ///< lab.sweep results, in the order they ran
  std::vector<Expectation> expectations;
  std::string error;   ///< the script failed (syntax, runtime or input error): one line
  std::string output;  ///< what lab.report and print wrote (also printed unless suppressed)
  /// Stopped early by SIGINT/SIGTERM or --timeout: the results so far are kept.
  StopReason stopped = StopReason::none;

  bool failed_expectation() const;
  bool failed_system() const;
  /// 0: all good; 1: an expectation or a system failed; 2: the script or its input is wrong
  /// (or it ran out of time); 130: interrupted by SIGINT/SIGTERM.
  int exit_code() const;
};

/// Load and run a script file. Never throws for problems in the script; they land in `error`.
ScriptResult run_script(const std::string& path, const PluginRegistry& registry,
                        const ScriptOptions& options);
/// The same for script text (used by tests and fuzzers); `chunk_name` shows in messages.
ScriptResult run_script_text(const std::string& text, const std::string& chunk_name,
                             const PluginRegistry& registry, const ScriptOptions& options);

/// The JSON results file of a script run.
nlohmann::json to_json(const ScriptResult& r);

}  // namespace hldlab
