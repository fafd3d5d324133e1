/// @file checkers.hpp
/// @brief Checkers of recorded histories (history.hpp), in the manner of Jepsen's Knossos and
/// Elle: they read only what clients saw, never a lesson's own bookkeeping.
///
/// - check_linearizable: register / key-value histories (reads and writes). Wing & Gong's search
///   with Lowe's memoisation (a cache of (linearized set, register state) already explored),
///   run on each key alone: linearizability is compositional (Herlihy & Wing's locality), so a
///   key-value history is linearizable iff every key's sub-history is. A step bound per key
///   turns a search that explodes into a clear "unknown". An invalid key yields a minimal
///   offending sub-history (no operation of it can be dropped and leave it invalid, except a
///   write whose value one of its reads returned).
/// - check_transactions: transactional histories. The dependency graph of committed
///   transactions, Adya's edges: ww (T installed the version right after U's), wr (T read U's
///   version), rw (T read the version U overwrote next); then aborted reads (G1a), intermediate
///   reads (G1b) and cycles classified as G0 (ww only), G1c (ww and wr), G-single (exactly one
///   rw) and G2 (several rw), each with a cycle.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "hldlab/history.hpp"
#include "hldlab/value.hpp"

namespace hldlab {

enum class Verdict { valid, invalid, unknown };
const char* verdict_name(Verdict v);

struct LinearizabilityOptions {
  /// Search steps allowed per key; beyond it the key (and the verdict, if nothing is invalid)
  /// is unknown.
  std::uint64_t max_steps_per_key = 2'000'000;
  /// Shrink the first invalid key's history to a minimal offending sub-history.
  bool shrink = true;
};

struct LinearizabilityResult {
  Verdict verdict = Verdict::valid;
  std::string reason;          ///< unknown: why
  std::size_t operations = 0;  ///< register operations checked (failed ones excluded)
  std::size_t keys = 0, invalid_keys = 0, unknown_keys = 0;
  std::uint64_t steps = 0;         ///< search steps, all keys together
  std::uint64_t key = 0;           ///< invalid: the first invalid key (in key order)
  std::vector<HistoryOp> witness;  ///< invalid: a minimal offending sub-history of that key
};

LinearizabilityResult check_linearizable(const History& history,
                                         const LinearizabilityOptions& options = {});
/// The witness as text, one operation a line, in invocation order.
std::string describe_witness(const LinearizabilityResult& result);

/// One edge of a dependency cycle: `from` -kind(key)-> `to` (transactions are indices into
/// History::ops()).
struct DependencyEdge {
  std::uint32_t from = 0, to = 0;
  std::string kind;  ///< "ww", "wr" or "rw"
  std::uint64_t key = 0;
};

struct Anomaly {
  std::string type;                   ///< G0, G1a, G1b, G1c, G-single, G2
  std::vector<DependencyEdge> cycle;  ///< cycles: the edges in order (empty for G1a / G1b)
  std::string text;                   ///< one line: the cycle, or the offending read
};

struct TransactionsOptions {
  std::size_t examples_per_type = 8;            ///< anomalies kept (with their text) per type
  std::uint64_t max_search_steps = 50'000'000;  ///< cycle search; beyond it: unknown
};

struct TransactionsResult {
  Verdict verdict = Verdict::valid;  ///< invalid: at least one anomaly
  std::string reason;
  std::size_t committed = 0, aborted = 0, indeterminate = 0;
  std::size_t ww_edges = 0, wr_edges = 0, rw_edges = 0;
  /// Anomalies per type: G1a / G1b count the offending reads; cycle types count distinct
  /// cycles (each the shortest cycle of its type through one edge, deduplicated).
  std::map<std::string, std::size_t> counts;
  std::vector<Anomaly> examples;
};

/// The anomaly types, in the order they are reported.
const std::vector<std::string>& anomaly_types();
TransactionsResult check_transactions(const History& history,
                                      const TransactionsOptions& options = {});

/// What lab.check_linearizable / lab.check_transactions return to Lua (see README).
Value result_value(const LinearizabilityResult& result);
Value result_value(const TransactionsResult& result);
/// What they print: a line with the verdict, then the witness or the anomalies' examples.
std::string result_text(const std::string& system, const LinearizabilityResult& result);
std::string result_text(const std::string& system, const TransactionsResult& result);

}  // namespace hldlab
