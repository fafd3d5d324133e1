/// @file sweep.hpp
/// @brief Parameter sweeps over seeds: the runs of a sweep, their statistics (mean and a
/// Student-t 95 % confidence interval per figure), shards, and the sweep JSON that
/// `hldlab sweep --shard i/N` writes and `hldlab merge` combines.
#pragma once

#include <cstdint>
#include <limits>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/value.hpp"

namespace hldlab {

/// Mean and 95 % confidence interval of a sample (Student t with n - 1 degrees of freedom).
struct Stats {
  std::size_t n = 0;
  double mean = std::numeric_limits<double>::quiet_NaN();
  double sd = std::numeric_limits<double>::quiet_NaN();  ///< sample standard deviation
  double lo = std::numeric_limits<double>::quiet_NaN();  ///< mean - t * sd / sqrt(n)
  double hi = std::numeric_limits<double>::quiet_NaN();
  double min = std::numeric_limits<double>::quiet_NaN();
  double max = std::numeric_limits<double>::quiet_NaN();
};
/// The two-sided 97.5 % quantile of Student's t with `df` degrees of freedom (df >= 1).
double student_t_975(std::size_t df);
/// Stats of `values`; with one value the interval is that value, with none everything is NaN.
Stats mean_ci(const std::vector<double>& values);

/// One run of a sweep: one point (a combination of parameter values) on one seed.
struct SweepRun {
  std::size_t index = 0;  ///< point * seeds + seed position: the order results are merged in
  std::uint64_t seed = 0;
  std::vector<std::pair<std::string, double>> values;  ///< what the run function returned
};

/// A sweep: its parameters (in name order), their values, the seeds, and the runs done so far
/// (all of them, or one shard's).
struct SweepResult {
  std::string name;
  std::vector<std::pair<std::string, List>> params;
  std::vector<std::uint64_t> seeds;
  std::vector<SweepRun> runs;  ///< by index

  std::size_t points() const;      ///< combinations of parameter values
  std::size_t total_runs() const;  ///< points() * seeds.size()
  /// The parameter values of point `p` (name -> value).
  Map point_params(std::size_t p) const;
  /// Figures in the order they first appear in the runs.
  std::vector<std::string> figures() const;
  /// Stats of `figure` over the seeds of point `p` (the runs present).
  Stats stats(std::size_t p, const std::string& figure) const;
};

/// Which runs a shard `index`/`count` does: run i belongs to shard i % count.
inline bool in_shard(std::size_t run, std::size_t index, std::size_t count) {
  return run % count == index;
}

/// The sweep JSON: definition, every run, and, when complete, each point's statistics.
nlohmann::json to_json(const SweepResult& s);
/// Every sweep's JSON, in order (the "sweeps" of a results file and of `hldlab sweep`).
nlohmann::json to_json(const std::vector<SweepResult>& sweeps);
/// Reads what to_json wrote; throws std::invalid_argument naming what is wrong.
SweepResult sweep_from_json(const nlohmann::json& j);
/// Merges the shards of the same sweeps (same definitions, disjoint runs, all runs present).
/// Throws std::invalid_argument naming the problem.
std::vector<SweepResult> merge_sweeps(const std::vector<std::vector<SweepResult>>& parts);
/// A text table: a row per point, mean ± half-interval per figure.
std::string format_sweep(const SweepResult& s);

}  // namespace hldlab
