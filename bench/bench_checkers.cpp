// Benchmark (not a test): what the history checkers cost on 10^4 operations. Histories are
// made from an atomic register / a serial store with known linearization points, so the
// verdicts are known (valid, or invalid by one injected stale read / lost updates). Prints a
// table; never asserts on time.
#include <algorithm>
#include <cstdio>
#include <map>

#include "bench_support.hpp"
#include "hldlab/runtime/checkers.hpp"

using namespace hldlab;

namespace {

/// `n` operations on `keys` registers: arrivals every `gap` on average, each lasting up to
/// `span`, taking effect at a uniform point of its interval (so the history is linearizable);
/// a quarter are writes. `stale`: one more read at the end returns an overwritten value.
History register_history(std::size_t n, std::uint64_t keys, Time gap, Time span, bool stale) {
  struct Planned {
    Time call, ret, point;
    std::uint64_t key;
    bool write;
    std::int64_t value;
  };
  Rng rng(7);
  std::vector<Planned> ops;
  Time t = 0;
  for (std::size_t i = 0; i < n; ++i) {
    t += static_cast<Time>(rng.exponential(static_cast<double>(gap)));
    const Time ret = t + 1 + static_cast<Time>(rng.below(static_cast<std::uint64_t>(span)));
    const Time point = t + static_cast<Time>(rng.below(static_cast<std::uint64_t>(ret - t)));
    ops.push_back({t, ret, point, rng.below(keys), rng.chance(0.25), static_cast<std::int64_t>(i)});
  }
  // Apply in linearization order: reads return the register's value at their point.
  std::vector<std::size_t> order(ops.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return ops[a].point < ops[b].point; });
  std::map<std::uint64_t, std::int64_t> state;
  for (std::size_t i : order) {
    Planned& op = ops[i];
    if (op.write) {
      state[op.key] = op.value;
    } else {
      auto it = state.find(op.key);
      op.value = it == state.end() ? History::kNoValue : it->second;
    }
  }
  History h(n + 1);
  for (const Planned& op : ops) {
    const auto id =
        h.invoke(static_cast<std::uint32_t>(op.key),
                 op.write ? HistoryKind::write : HistoryKind::read, op.key, op.value, op.call);
    h.complete(id, HistoryOutcome::ok, op.ret, op.value);
  }
  if (stale) {  // the first value ever written to key 0, read long after the end
    for (const Planned& op : ops)
      if (op.write && op.key == 0) {
        h.complete(h.invoke(0, HistoryKind::read, 0, 0, t + span * 10), HistoryOutcome::ok,
                   t + span * 11, op.value);
        break;
      }
  }
  return h;
}

/// `n` read-modify-write transactions on `keys` keys, serial; with `lost` > 0, every
/// `lost`-th transaction read the version before its predecessor's (a lost update).
History transaction_history(std::size_t n, std::uint64_t keys, std::size_t lost) {
  Rng rng(11);
  History h(n);
  std::vector<std::int64_t> current(keys, History::kNoValue), previous(keys, History::kNoValue);
  for (std::size_t i = 0; i < n; ++i) {
    const auto id = h.begin(0, static_cast<Time>(i));
    for (int j = 0; j < 2; ++j) {
      const std::uint64_t k = rng.below(keys);
      const bool stale = lost > 0 && i % lost == 0 && previous[k] != current[k];
      h.read(id, k, stale ? previous[k] : current[k]);
      const auto v = static_cast<std::int64_t>(i * 2 + static_cast<std::size_t>(j));
      h.write(id, k, v, current[k]);
      previous[k] = current[k];
      current[k] = v;
    }
    h.complete(id, HistoryOutcome::ok, static_cast<Time>(i));
  }
  return h;
}

void time_linearizable(const std::string& name, const History& h) {
  const double start = bench::now_seconds();
  const LinearizabilityResult r = check_linearizable(h);
  const double took = bench::now_seconds() - start;
  bench::report(name + " -> " + verdict_name(r.verdict), static_cast<double>(h.size()), took,
                "ops");
}

void time_transactions(const std::string& name, const History& h) {
  const double start = bench::now_seconds();
  const TransactionsResult r = check_transactions(h);
  const double took = bench::now_seconds() - start;
  std::size_t anomalies = 0;
  for (const auto& [type, count] : r.counts) anomalies += count;
  bench::report(name + " -> " + verdict_name(r.verdict) + " (" + std::to_string(anomalies) + ")",
                static_cast<double>(h.size()), took, "txns");
}

}  // namespace

int main() {
  const std::size_t n = 10000;
  std::printf("History checkers on 10^4 operations\n");
  time_linearizable("linearizable, 10 keys, ~1 op in flight per key",
                    register_history(n, 10, microseconds(100), milliseconds(1), false));
  time_linearizable("linearizable, 1 key, ~5 ops in flight",
                    register_history(n, 1, microseconds(200), milliseconds(2), false));
  time_linearizable("linearizable, 1 key, ~20 ops in flight",
                    register_history(n, 1, microseconds(100), milliseconds(4), false));
  time_linearizable("one stale read, 10 keys (search + minimal witness)",
                    register_history(n, 10, microseconds(100), milliseconds(1), true));
  time_transactions("transactions, 100 keys, serial", transaction_history(n, 100, 0));
  time_transactions("transactions, 100 keys, every 50th a lost update",
                    transaction_history(n, 100, 50));
  return 0;
}
