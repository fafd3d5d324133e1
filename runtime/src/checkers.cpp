// Checkers of recorded histories: linearizability (Wing & Gong / Lowe, per key) and transactional
// anomalies (Adya's dependency graph, as Elle builds it). See checkers.hpp.
#include "hldlab/runtime/checkers.hpp"

#include <algorithm>
#include <limits>
#include <set>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace hldlab {

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::valid:
      return "valid";
    case Verdict::invalid:
      return "invalid";
    case Verdict::unknown:
      break;
  }
  return "unknown";
}

namespace {

constexpr Time kInfinity = std::numeric_limits<Time>::max();

// ---- linearizability ---------------------------------------------------------------------------

/// A register operation of one key, as the search sees it.
struct RegisterOp {
  Time call = 0, ret = 0;   // ret = kInfinity: a write whose outcome is unknown
  std::int64_t value = 0;   // written, or read
  std::uint32_t index = 0;  // into History::ops()
  bool write = false;
};

enum class Search { linearizable, not_linearizable, gave_up };

struct CacheKey {
  std::vector<std::uint64_t> linearized;
  std::int64_t state;
  bool operator==(const CacheKey& o) const {
    return state == o.state && linearized == o.linearized;
  }
};
struct CacheKeyHash {
  std::size_t operator()(const CacheKey& k) const {
    std::uint64_t h = Rng::hash(static_cast<std::uint64_t>(k.state));
    for (std::uint64_t w : k.linearized) h = Rng::hash(h ^ w);
    return static_cast<std::size_t>(h);
  }
};

/// Is there a total order of `ops`, consistent with real time (an operation that returned
/// before another was called comes first), in which every read returns the last value written
/// (History::kNoValue before any write)? Lowe's version of Wing & Gong's search: walk the
/// calls in time order, linearize one when the register allows it, backtrack at the first
/// return of an operation not linearized yet; (linearized set, state) pairs already explored
/// are not explored again. A write of unknown outcome returns at infinity: when only such
/// returns are left, the rest of them never happened.
Search search(const std::vector<RegisterOp>& ops, std::uint64_t max_steps, std::uint64_t& steps) {
  const std::size_t n = ops.size();
  if (n == 0) return Search::linearizable;
  struct Event {
    Time time;
    bool call;
    std::uint32_t op;
  };
  std::vector<Event> events;
  events.reserve(2 * n);
  for (std::uint32_t i = 0; i < n; ++i) {
    events.push_back({ops[i].call, true, i});
    events.push_back({ops[i].ret, false, i});
  }
  // At equal times calls come first: operations that touch at one instant are concurrent.
  std::sort(events.begin(), events.end(), [](const Event& a, const Event& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.call != b.call) return a.call;
    return a.op < b.op;
  });
  // A doubly linked list of the events (node 0 is the head, node i + 1 is events[i]).
  const int nodes = static_cast<int>(2 * n + 1);
  std::vector<int> next(static_cast<std::size_t>(nodes)), prev(static_cast<std::size_t>(nodes));
  std::vector<int> return_node(n);
  for (int i = 0; i < nodes; ++i) {
    next[static_cast<std::size_t>(i)] = i + 1 < nodes ? i + 1 : -1;
    prev[static_cast<std::size_t>(i)] = i - 1;
  }
  for (std::size_t i = 0; i < events.size(); ++i)
    if (!events[i].call) return_node[events[i].op] = static_cast<int>(i + 1);
  auto unlink = [&](int x) {
    const auto ux = static_cast<std::size_t>(x);
    next[static_cast<std::size_t>(prev[ux])] = next[ux];
    if (next[ux] >= 0) prev[static_cast<std::size_t>(next[ux])] = prev[ux];
  };
  auto relink = [&](int x) {
    const auto ux = static_cast<std::size_t>(x);
    next[static_cast<std::size_t>(prev[ux])] = x;
    if (next[ux] >= 0) prev[static_cast<std::size_t>(next[ux])] = x;
  };

  std::vector<std::uint64_t> linearized((n + 63) / 64, 0);
  std::unordered_set<CacheKey, CacheKeyHash> explored;
  std::vector<std::pair<int, std::int64_t>> stack;  // (call node, state before it)
  std::int64_t state = History::kNoValue;
  // The last node left in the list is always a return (an operation's return follows its
  // call), so `node` never runs off the end.
  int node = next[0];
  while (next[0] >= 0) {
    if (++steps > max_steps) return Search::gave_up;
    const Event& e = events[static_cast<std::size_t>(node - 1)];
    if (e.call) {
      const RegisterOp& op = ops[e.op];
      if (op.write || op.value == state) {
        const std::int64_t after = op.write ? op.value : state;
        linearized[e.op / 64] |= std::uint64_t{1} << (e.op % 64);
        if (explored.insert(CacheKey{linearized, after}).second) {
          stack.emplace_back(node, state);
          state = after;
          unlink(node);
          unlink(return_node[e.op]);
          node = next[0];
          continue;
        }
        linearized[e.op / 64] &= ~(std::uint64_t{1} << (e.op % 64));
      }
      node = next[static_cast<std::size_t>(node)];
    } else {
      if (e.time == kInfinity) return Search::linearizable;  // only unknown writes are left
      if (stack.empty()) return Search::not_linearizable;
      const auto [call_node, before] = stack.back();
      stack.pop_back();
      const std::uint32_t op = events[static_cast<std::size_t>(call_node - 1)].op;
      state = before;
      linearized[op / 64] &= ~(std::uint64_t{1} << (op % 64));
      relink(return_node[op]);
      relink(call_node);
      node = next[static_cast<std::size_t>(call_node)];
    }
  }
  return Search::linearizable;
}

/// Shrink an invalid key history to a minimal offending one: first the shortest prefix (by
/// invocation, doubling) that is invalid together with the writes its reads read, then drop
/// operations one by one, last first, as long as it stays invalid. A write whose value a
/// remaining read returned stays: without it the read would be "invalid" for a lesser reason.
std::vector<RegisterOp> shrink(std::vector<RegisterOp> ops, std::uint64_t max_steps) {
  std::sort(ops.begin(), ops.end(),
            [](const RegisterOp& a, const RegisterOp& b) { return a.call < b.call; });
  auto invalid = [&](const std::vector<RegisterOp>& candidate) {
    std::uint64_t steps = 0;
    return search(candidate, max_steps, steps) == Search::not_linearizable;
  };
  auto with_sources = [&](std::size_t count) {
    std::vector<RegisterOp> out(ops.begin(), ops.begin() + static_cast<std::ptrdiff_t>(count));
    std::unordered_set<std::int64_t> read_values;
    for (const RegisterOp& op : out)
      if (!op.write) read_values.insert(op.value);
    for (std::size_t i = count; i < ops.size(); ++i)
      if (ops[i].write && read_values.count(ops[i].value)) out.push_back(ops[i]);
    return out;
  };
  std::vector<RegisterOp> current = ops;
  for (std::size_t count = 8; count < ops.size(); count *= 2) {
    std::vector<RegisterOp> prefix = with_sources(count);
    if (invalid(prefix)) {
      current = std::move(prefix);
      break;
    }
  }
  if (current.size() > 2000) return current;  // too long to shrink one by one
  // Passes until nothing more can go: a write kept for a read is tried again once the read
  // is gone.
  for (bool removed = true; removed;) {
    removed = false;
    for (std::size_t i = current.size(); i-- > 0;) {
      const RegisterOp& op = current[i];
      if (op.write && std::any_of(current.begin(), current.end(), [&](const RegisterOp& r) {
            return !r.write && r.value == op.value;
          }))
        continue;
      std::vector<RegisterOp> without = current;
      without.erase(without.begin() + static_cast<std::ptrdiff_t>(i));
      if (invalid(without)) {
        current = std::move(without);
        removed = true;
      }
    }
  }
  return current;
}

}  // namespace

LinearizabilityResult check_linearizable(const History& history,
                                         const LinearizabilityOptions& options) {
  LinearizabilityResult result;
  if (history.dropped() > 0) {
    result.verdict = Verdict::unknown;
    result.reason = "the history was truncated at " + std::to_string(history.max_ops()) +
                    " operations (" + std::to_string(history.dropped()) + " not recorded)";
    return result;
  }
  std::map<std::uint64_t, std::vector<RegisterOp>> by_key;
  const auto& ops = history.ops();
  for (std::uint32_t i = 0; i < ops.size(); ++i) {
    const HistoryOp& op = ops[i];
    if (op.kind == HistoryKind::txn || op.outcome == HistoryOutcome::fail) continue;
    const bool ok = op.outcome == HistoryOutcome::ok;
    if (op.kind == HistoryKind::read && !ok) continue;  // a read with no answer says nothing
    by_key[op.key].push_back(
        {op.invoked, ok ? op.completed : kInfinity, op.value, i, op.kind == HistoryKind::write});
    ++result.operations;
  }
  result.keys = by_key.size();
  const std::vector<RegisterOp>* first_invalid = nullptr;
  for (const auto& [key, key_ops] : by_key) {
    std::uint64_t steps = 0;
    const Search s = search(key_ops, options.max_steps_per_key, steps);
    result.steps += steps;
    if (s == Search::not_linearizable) {
      if (result.invalid_keys++ == 0) {
        result.key = key;
        first_invalid = &key_ops;
      }
    } else if (s == Search::gave_up) {
      ++result.unknown_keys;
    }
  }
  if (result.invalid_keys > 0) {
    result.verdict = Verdict::invalid;
    std::vector<RegisterOp> witness = *first_invalid;
    if (options.shrink) witness = shrink(witness, options.max_steps_per_key);
    std::sort(witness.begin(), witness.end(),
              [](const RegisterOp& a, const RegisterOp& b) { return a.index < b.index; });
    for (const RegisterOp& op : witness) result.witness.push_back(ops[op.index]);
  } else if (result.unknown_keys > 0) {
    result.verdict = Verdict::unknown;
    result.reason = std::to_string(result.unknown_keys) + " key(s) exceeded the search bound of " +
                    std::to_string(options.max_steps_per_key) + " steps";
  }
  return result;
}

namespace {
std::string value_text(std::int64_t v) {
  return v == History::kNoValue ? "nil" : std::to_string(v);
}
std::string time_text(Time t) {
  if (t < 0) return "never";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6fs", to_seconds(t));
  return buffer;
}
const char* outcome_text(HistoryOutcome o) {
  switch (o) {
    case HistoryOutcome::ok:
      return "ok";
    case HistoryOutcome::fail:
      return "fail";
    case HistoryOutcome::info:
      return "info";
    case HistoryOutcome::pending:
      break;
  }
  return "pending";
}
}  // namespace

std::string describe_witness(const LinearizabilityResult& result) {
  std::ostringstream out;
  for (const HistoryOp& op : result.witness) {
    out << "    process " << op.process << "  "
        << (op.kind == HistoryKind::write ? "write " : "read  ") << "key " << op.key << " "
        << (op.kind == HistoryKind::write ? "<- " : "-> ") << value_text(op.value) << "  ["
        << time_text(op.invoked) << " .. " << time_text(op.completed) << "] "
        << outcome_text(op.outcome) << "\n";
  }
  return out.str();
}

// ---- transactions ------------------------------------------------------------------------------

const std::vector<std::string>& anomaly_types() {
  static const std::vector<std::string> types = {"G0", "G1a", "G1b", "G1c", "G-single", "G2"};
  return types;
}

namespace {

enum EdgeKind : std::uint8_t { kWW = 1, kWR = 2, kRW = 4 };

const char* kind_name(std::uint8_t k) {
  return k == kWW ? "ww" : k == kWR ? "wr" : "rw";
}

struct VersionKey {
  std::uint64_t key;
  std::int64_t value;
  bool operator==(const VersionKey& o) const { return key == o.key && value == o.value; }
};
struct VersionKeyHash {
  std::size_t operator()(const VersionKey& v) const {
    return static_cast<std::size_t>(
        Rng::hash(v.key ^ Rng::hash(static_cast<std::uint64_t>(v.value))));
  }
};

struct Write {
  std::uint32_t txn;  // index into History::ops()
  std::int64_t prev;
  bool final;  // the transaction's last write of this key
};

struct Graph {
  // Per node (a committed transaction): outgoing (to, kinds, key per kind).
  struct Out {
    std::uint32_t to;
    std::uint8_t kinds;
    std::uint64_t key[3];
  };
  std::vector<std::vector<Out>> out;
  void add(std::uint32_t from, std::uint32_t to, std::uint8_t kind, std::uint64_t key) {
    for (Out& o : out[from])
      if (o.to == to) {
        if (!(o.kinds & kind)) o.key[kind == kWW ? 0 : kind == kWR ? 1 : 2] = key;
        o.kinds |= kind;
        return;
      }
    Out o{to, kind, {0, 0, 0}};
    o.key[kind == kWW ? 0 : kind == kWR ? 1 : 2] = key;
    out[from].push_back(o);
  }
};

/// Strongly connected components (iterative Tarjan); returns the component of each node.
std::vector<std::uint32_t> components(const Graph& g) {
  const std::size_t n = g.out.size();
  constexpr std::uint32_t kUnset = std::numeric_limits<std::uint32_t>::max();
  std::vector<std::uint32_t> index(n, kUnset), low(n, 0), comp(n, kUnset);
  std::vector<bool> on_stack(n, false);
  std::vector<std::uint32_t> stack;
  std::vector<std::pair<std::uint32_t, std::size_t>> call;  // (node, next edge)
  std::uint32_t counter = 0, components = 0;
  for (std::uint32_t root = 0; root < n; ++root) {
    if (index[root] != kUnset) continue;
    call.emplace_back(root, 0);
    while (!call.empty()) {
      auto& [v, edge] = call.back();
      if (edge == 0 && index[v] == kUnset) {
        index[v] = low[v] = counter++;
        stack.push_back(v);
        on_stack[v] = true;
      }
      if (edge < g.out[v].size()) {
        const std::uint32_t w = g.out[v][edge++].to;
        if (index[w] == kUnset)
          call.emplace_back(w, 0);
        else if (on_stack[w])
          low[v] = std::min(low[v], index[w]);
        continue;
      }
      if (low[v] == index[v]) {
        std::uint32_t w;
        do {
          w = stack.back();
          stack.pop_back();
          on_stack[w] = false;
          comp[w] = components;
        } while (w != v);
        ++components;
      }
      const std::uint32_t done = v;
      call.pop_back();
      if (!call.empty()) low[call.back().first] = std::min(low[call.back().first], low[done]);
    }
  }
  return comp;
}

}  // namespace

TransactionsResult check_transactions(const History& history, const TransactionsOptions& options) {
  TransactionsResult result;
  for (const std::string& type : anomaly_types()) result.counts[type] = 0;
  if (history.dropped() > 0) {
    result.verdict = Verdict::unknown;
    result.reason = "the history was truncated at " + std::to_string(history.max_ops()) +
                    " operations (" + std::to_string(history.dropped()) + " not recorded)";
    return result;
  }
  const auto& ops = history.ops();
  std::vector<std::uint32_t> txns;  // op indices of transactions
  std::vector<std::vector<MicroOp>> micro;
  std::unordered_map<std::uint32_t, std::uint32_t> node_of;  // committed op index -> node
  std::vector<std::uint32_t> txn_of_node;
  for (std::uint32_t i = 0; i < ops.size(); ++i) {
    if (ops[i].kind != HistoryKind::txn) continue;
    txns.push_back(i);
    micro.push_back(history.micro_ops(ops[i]));
    switch (ops[i].outcome) {
      case HistoryOutcome::ok:
        ++result.committed;
        node_of[i] = static_cast<std::uint32_t>(txn_of_node.size());
        txn_of_node.push_back(i);
        break;
      case HistoryOutcome::fail:
        ++result.aborted;
        break;
      default:
        ++result.indeterminate;
    }
  }
  auto committed = [&](std::uint32_t op) { return ops[op].outcome == HistoryOutcome::ok; };

  // Every written version: its writer, the version it overwrote, whether it is final.
  std::unordered_map<VersionKey, Write, VersionKeyHash> writes;
  std::unordered_map<VersionKey, std::vector<std::int64_t>, VersionKeyHash> successors;
  for (std::size_t t = 0; t < txns.size(); ++t) {
    const auto& m = micro[t];
    for (std::size_t j = 0; j < m.size(); ++j) {
      if (!m[j].write) continue;
      bool final = true;
      for (std::size_t later = j + 1; later < m.size(); ++later)
        if (m[later].write && m[later].key == m[j].key) final = false;
      writes[{m[j].key, m[j].value}] = Write{txns[t], m[j].prev, final};
      successors[{m[j].key, m[j].prev}].push_back(m[j].value);
    }
  }

  auto keep = [&](Anomaly a) {
    std::size_t& count = result.counts[a.type];
    ++count;
    std::size_t kept = 0;
    for (const Anomaly& e : result.examples) kept += e.type == a.type;
    if (kept < options.examples_per_type) result.examples.push_back(std::move(a));
  };
  auto name = [&](std::uint32_t op) { return "T" + std::to_string(op); };

  Graph g;
  g.out.resize(txn_of_node.size());
  for (std::size_t t = 0; t < txns.size(); ++t) {
    const std::uint32_t me = txns[t];
    if (!committed(me)) continue;
    const std::uint32_t node = node_of[me];
    for (const MicroOp& m : micro[t]) {
      if (m.write) {
        // ww: from the nearest committed other writer below this version.
        std::int64_t p = m.prev;
        while (p != History::kNoValue) {
          auto it = writes.find({m.key, p});
          if (it == writes.end()) break;
          if (it->second.txn != me && committed(it->second.txn)) {
            g.add(node_of[it->second.txn], node, kWW, m.key);
            ++result.ww_edges;
            break;
          }
          p = it->second.prev;
        }
        continue;
      }
      // wr, G1a, G1b.
      if (m.value != History::kNoValue) {
        auto it = writes.find({m.key, m.value});
        if (it != writes.end() && it->second.txn != me) {
          const Write& w = it->second;
          if (ops[w.txn].outcome == HistoryOutcome::fail) {
            keep({"G1a",
                  {},
                  name(me) + " read key " + std::to_string(m.key) + " = " + value_text(m.value) +
                      " written by " + name(w.txn) + ", which aborted"});
          } else if (committed(w.txn)) {
            if (!w.final)
              keep({"G1b",
                    {},
                    name(me) + " read key " + std::to_string(m.key) + " = " + value_text(m.value) +
                        ", an intermediate write of " + name(w.txn)});
            g.add(node_of[w.txn], node, kWR, m.key);
            ++result.wr_edges;
          }
        }
      }
      // rw: to the committed writers of the next versions, passing over uncommitted versions
      // and later versions of the same writer (after an intermediate read: that is G1b).
      const auto read_writer = writes.find({m.key, m.value});
      const std::uint32_t source =
          read_writer == writes.end() ? History::kNone : read_writer->second.txn;
      std::vector<std::int64_t> frontier = {m.value};
      std::unordered_set<std::int64_t> seen;
      while (!frontier.empty()) {
        const std::int64_t v = frontier.back();
        frontier.pop_back();
        auto s = successors.find({m.key, v});
        if (s == successors.end()) continue;
        for (std::int64_t next : s->second) {
          if (!seen.insert(next).second) continue;
          const Write& w = writes[{m.key, next}];
          if (w.txn == me) continue;
          if (committed(w.txn) && w.txn != source) {
            g.add(node, node_of[w.txn], kRW, m.key);
            ++result.rw_edges;
          } else {
            frontier.push_back(next);
          }
        }
      }
    }
  }

  // Cycles, within strongly connected components only.
  const std::vector<std::uint32_t> comp = components(g);
  std::uint64_t steps = 0;
  bool gave_up = false;
  std::set<std::vector<std::uint64_t>> found;
  const std::size_t n = g.out.size();
  std::vector<std::int64_t> parent(n);
  std::vector<std::uint8_t> parent_kind(n);
  std::vector<std::uint64_t> parent_key(n);
  // Shortest path from `from` to `to` using edges of `allowed` kinds, inside their component:
  // the cycle's edges after the closing one, or empty.
  auto path = [&](std::uint32_t from, std::uint32_t to, std::uint8_t allowed) {
    std::vector<DependencyEdge> edges;
    std::fill(parent.begin(), parent.end(), -1);
    std::vector<std::uint32_t> queue = {from};
    parent[from] = from;
    for (std::size_t head = 0; head < queue.size(); ++head) {
      const std::uint32_t v = queue[head];
      if (v == to) break;
      for (const Graph::Out& o : g.out[v]) {
        if (++steps > options.max_search_steps) {
          gave_up = true;
          return edges;
        }
        if (!(o.kinds & allowed) || comp[o.to] != comp[from] || parent[o.to] >= 0) continue;
        const std::uint8_t k = (o.kinds & allowed & kWW)   ? kWW
                               : (o.kinds & allowed & kWR) ? kWR
                                                           : kRW;
        parent[o.to] = v;
        parent_kind[o.to] = k;
        parent_key[o.to] = o.key[k == kWW ? 0 : k == kWR ? 1 : 2];
        queue.push_back(o.to);
      }
    }
    if (parent[to] < 0) return edges;
    for (std::uint32_t v = to; v != from; v = static_cast<std::uint32_t>(parent[v]))
      edges.push_back({txn_of_node[static_cast<std::size_t>(parent[v])], txn_of_node[v],
                       kind_name(parent_kind[v]), parent_key[v]});
    std::reverse(edges.begin(), edges.end());
    return edges;
  };
  auto report = [&](const std::string& type, std::uint32_t a, std::uint32_t b, std::uint8_t kind,
                    std::uint64_t key, std::vector<DependencyEdge> rest) {
    std::vector<DependencyEdge> cycle = {{txn_of_node[a], txn_of_node[b], kind_name(kind), key}};
    cycle.insert(cycle.end(), rest.begin(), rest.end());
    // Deduplicate: the cycle rotated to start at its smallest transaction.
    std::size_t start = 0;
    for (std::size_t i = 1; i < cycle.size(); ++i)
      if (cycle[i].from < cycle[start].from) start = i;
    std::vector<std::uint64_t> canonical;
    for (std::size_t i = 0; i < cycle.size(); ++i) {
      const DependencyEdge& e = cycle[(start + i) % cycle.size()];
      canonical.push_back(e.from);
      canonical.push_back(e.kind == "ww" ? 0 : e.kind == "wr" ? 1 : 2);
    }
    if (!found.insert(canonical).second) return;
    std::rotate(cycle.begin(), cycle.begin() + static_cast<std::ptrdiff_t>(start), cycle.end());
    std::string text = name(cycle.front().from);
    for (const DependencyEdge& e : cycle)
      text += " -" + e.kind + "(key " + std::to_string(e.key) + ")-> " + name(e.to);
    keep({type, std::move(cycle), std::move(text)});
  };
  for (std::uint32_t a = 0; a < n && !gave_up; ++a) {
    for (const Graph::Out& o : g.out[a]) {
      const std::uint32_t b = o.to;
      if (comp[a] != comp[b] || a == b) continue;
      if (o.kinds & kWW) {
        auto rest = path(b, a, kWW);
        if (!rest.empty()) report("G0", a, b, kWW, o.key[0], rest);
      }
      if (o.kinds & kWR) {
        auto rest = path(b, a, kWW | kWR);
        if (!rest.empty()) report("G1c", a, b, kWR, o.key[1], rest);
      }
      if (o.kinds & kRW) {
        auto rest = path(b, a, kWW | kWR);
        if (!rest.empty()) {
          report("G-single", a, b, kRW, o.key[2], rest);
        } else {
          rest = path(b, a, kWW | kWR | kRW);
          if (!rest.empty()) report("G2", a, b, kRW, o.key[2], rest);
        }
      }
      if (gave_up) break;
    }
  }
  std::size_t anomalies = 0;
  for (const auto& [type, count] : result.counts) anomalies += count;
  if (anomalies > 0) {
    result.verdict = Verdict::invalid;
  } else if (gave_up) {
    result.verdict = Verdict::unknown;
    result.reason =
        "the cycle search exceeded " + std::to_string(options.max_search_steps) + " steps";
  }
  return result;
}

// ---- results for scripts -----------------------------------------------------------------------

namespace {
const char* kind_text(HistoryKind k) {
  return k == HistoryKind::write ? "write" : k == HistoryKind::read ? "read" : "txn";
}
}  // namespace

Value result_value(const LinearizabilityResult& r) {
  Map m{{"verdict", std::string(verdict_name(r.verdict))},
        {"valid", r.verdict == Verdict::valid},
        {"operations", static_cast<std::int64_t>(r.operations)},
        {"keys", static_cast<std::int64_t>(r.keys)},
        {"invalid_keys", static_cast<std::int64_t>(r.invalid_keys)},
        {"unknown_keys", static_cast<std::int64_t>(r.unknown_keys)},
        {"steps", static_cast<std::int64_t>(r.steps)}};
  if (!r.reason.empty()) m["reason"] = r.reason;
  if (r.verdict == Verdict::invalid) {
    m["key"] = static_cast<std::int64_t>(r.key);
    List witness;
    for (const HistoryOp& op : r.witness) {
      Map w{{"process", static_cast<std::int64_t>(op.process)},
            {"op", std::string(kind_text(op.kind))},
            {"key", static_cast<std::int64_t>(op.key)},
            {"invoked", to_seconds(op.invoked)},
            {"outcome", std::string(outcome_text(op.outcome))}};
      if (op.value != History::kNoValue) w["value"] = op.value;
      if (op.completed >= 0) w["completed"] = to_seconds(op.completed);
      witness.emplace_back(std::move(w));
    }
    m["witness"] = std::move(witness);
  }
  return Value(std::move(m));
}

Value result_value(const TransactionsResult& r) {
  Map counts, cycles;
  for (const std::string& type : anomaly_types()) {
    const auto it = r.counts.find(type);
    counts[type] = static_cast<std::int64_t>(it == r.counts.end() ? 0 : it->second);
    List examples;
    for (const Anomaly& a : r.examples)
      if (a.type == type) examples.emplace_back(a.text);
    cycles[type] = std::move(examples);
  }
  Map m{{"verdict", std::string(verdict_name(r.verdict))},
        {"valid", r.verdict == Verdict::valid},
        {"committed", static_cast<std::int64_t>(r.committed)},
        {"aborted", static_cast<std::int64_t>(r.aborted)},
        {"indeterminate", static_cast<std::int64_t>(r.indeterminate)},
        {"ww", static_cast<std::int64_t>(r.ww_edges)},
        {"wr", static_cast<std::int64_t>(r.wr_edges)},
        {"rw", static_cast<std::int64_t>(r.rw_edges)},
        {"anomalies", std::move(counts)},
        {"examples", std::move(cycles)}};
  if (!r.reason.empty()) m["reason"] = r.reason;
  return Value(std::move(m));
}

std::string result_text(const std::string& system, const LinearizabilityResult& r) {
  std::string text = "  linearizable? " + system + ": " + verdict_name(r.verdict) + " (" +
                     std::to_string(r.operations) + " operations on " + std::to_string(r.keys) +
                     " keys";
  if (r.invalid_keys > 0) text += ", " + std::to_string(r.invalid_keys) + " keys not linearizable";
  text += ")";
  if (!r.reason.empty()) text += ": " + r.reason;
  text += "\n";
  if (r.verdict == Verdict::invalid)
    text += "    no linearization of key " + std::to_string(r.key) +
            "; a minimal offending sub-history:\n" + describe_witness(r);
  return text;
}

std::string result_text(const std::string& system, const TransactionsResult& r) {
  std::string text = "  transactions " + system + ": " + verdict_name(r.verdict) + " (" +
                     std::to_string(r.committed) + " committed, " + std::to_string(r.aborted) +
                     " aborted";
  for (const std::string& type : anomaly_types()) {
    const auto it = r.counts.find(type);
    if (it != r.counts.end() && it->second > 0)
      text += ", " + type + " " + std::to_string(it->second);
  }
  text += ")";
  if (!r.reason.empty()) text += ": " + r.reason;
  text += "\n";
  for (const std::string& type : anomaly_types()) {
    int shown = 0;
    for (const Anomaly& a : r.examples)
      if (a.type == type && shown++ < 2) text += "    " + type + ": " + a.text + "\n";
  }
  return text;
}

}  // namespace hldlab
