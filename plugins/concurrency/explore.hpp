// Systematic exploration of small concurrent programs, in the manner of model checkers such as
// loom or DSLabs: every interleaving of the threads' steps is run, one after the other, from the
// same initial state, and the outcomes are counted exactly.
//
//   explore({increment_program(kind, k), increment_program(kind, k)})
//     -> executions (complete or deadlocked), how many lost an update, deadlocked, CAS retries
//
// A thread is a list of steps on shared memory (variables and mutexes) and two registers
// (`loaded`: what its last load read, `value`: what it will write):
//   load x    loaded = value = mem[x]          add      value += 1
//   store x   mem[x] = value                   cas x    mem[x] == loaded ? mem[x] = value
//   lock m    take m, or wait while held                       : retry from the last load
//   unlock m  release m
// At each state every thread that can make a step is tried in turn (depth-first). An execution
// ends when every thread has finished (complete) or none can move (deadlocked: each waits for a
// mutex another holds). A failed CAS makes progress only after another thread wrote, so the
// programs built here have finitely many executions.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace concurrency {

enum class StepKind : std::uint8_t { load, add, store, cas, lock, unlock };

struct Step {
  StepKind kind;
  std::uint8_t target = 0;  // the variable (load, store, cas) or the mutex (lock, unlock)
};

using Program = std::vector<Step>;

/// The increment programs of the lesson's counter variants, `k` increments of variable 0.
enum class IncrementKind { unsynchronized, mutex, atomic_cas };

inline Program increment_program(IncrementKind kind, int k) {
  Program p;
  for (int i = 0; i < k; ++i) {
    if (kind == IncrementKind::mutex) p.push_back({StepKind::lock, 0});
    p.push_back({StepKind::load, 0});
    p.push_back({StepKind::add});
    p.push_back({kind == IncrementKind::atomic_cas ? StepKind::cas : StepKind::store, 0});
    if (kind == IncrementKind::mutex) p.push_back({StepKind::unlock, 0});
  }
  return p;
}

/// `k` times: lock `first`, lock `second`, increment variable 0, unlock `second`, unlock `first`
/// (the lesson's transfer, taking its two locks in a chosen order).
inline Program two_lock_program(std::uint8_t first, std::uint8_t second, int k) {
  Program p;
  for (int i = 0; i < k; ++i) {
    p.push_back({StepKind::lock, first});
    p.push_back({StepKind::lock, second});
    p.push_back({StepKind::load, 0});
    p.push_back({StepKind::add});
    p.push_back({StepKind::store, 0});
    p.push_back({StepKind::unlock, second});
    p.push_back({StepKind::unlock, first});
  }
  return p;
}

struct Exploration {
  std::uint64_t executions = 0;   // complete + deadlocked
  std::uint64_t lost_update = 0;  // complete executions whose variables sum to less than the
                                  // number of increments written
  std::uint64_t deadlocked = 0;   // executions where no thread could move before the end
  std::uint64_t cas_retries = 0;  // failed CAS over every execution
  std::map<std::int64_t, std::uint64_t> finals;  // variable 0 at the end of complete executions
};

namespace detail {

constexpr std::size_t kVariables = 4, kMutexes = 4, kMaxThreads = 4;

struct State {
  std::int64_t mem[kVariables] = {};
  int owner[kMutexes] = {-1, -1, -1, -1};
  std::uint32_t pc[kMaxThreads] = {}, last_load[kMaxThreads] = {};
  std::int64_t loaded[kMaxThreads] = {}, value[kMaxThreads] = {};
  std::int64_t written = 0;  // increments stored (store, or a successful CAS)
};

inline void explore_from(const std::vector<Program>& threads, const State& s, Exploration& out) {
  bool any_moved = false, all_done = true;
  for (std::size_t t = 0; t < threads.size(); ++t) {
    if (s.pc[t] >= threads[t].size()) continue;
    all_done = false;
    const Step step = threads[t][s.pc[t]];
    if (step.kind == StepKind::lock && s.owner[step.target] != -1) continue;  // waits
    any_moved = true;
    State n = s;
    switch (step.kind) {
      case StepKind::load:
        n.loaded[t] = n.value[t] = n.mem[step.target];
        n.last_load[t] = n.pc[t];
        break;
      case StepKind::add:
        ++n.value[t];
        break;
      case StepKind::store:
        n.mem[step.target] = n.value[t];
        ++n.written;
        break;
      case StepKind::cas:
        if (n.mem[step.target] == n.loaded[t]) {
          n.mem[step.target] = n.value[t];
          ++n.written;
        } else {
          ++out.cas_retries;
          n.pc[t] = n.last_load[t];
          explore_from(threads, n, out);
          continue;
        }
        break;
      case StepKind::lock:
        n.owner[step.target] = static_cast<int>(t);
        break;
      case StepKind::unlock:
        n.owner[step.target] = -1;
        break;
    }
    ++n.pc[t];
    explore_from(threads, n, out);
  }
  if (all_done) {
    ++out.executions;
    std::int64_t sum = 0;
    for (std::int64_t v : s.mem) sum += v;
    if (sum != s.written) ++out.lost_update;
    ++out.finals[s.mem[0]];
  } else if (!any_moved) {
    ++out.executions;
    ++out.deadlocked;
  }
}

}  // namespace detail

/// Run every interleaving of `threads` (at most 4 threads, 4 variables, 4 mutexes) and count
/// the outcomes. The number of executions grows as the multinomial coefficient of the programs'
/// lengths: keep programs short (two threads of 9 steps: 48620 executions).
inline Exploration explore(const std::vector<Program>& threads) {
  if (threads.size() > detail::kMaxThreads) throw std::invalid_argument("explore: > 4 threads");
  for (const Program& p : threads)
    for (const Step& s : p) {
      const bool mutex = s.kind == StepKind::lock || s.kind == StepKind::unlock;
      if (s.target >= (mutex ? detail::kMutexes : detail::kVariables))
        throw std::invalid_argument("explore: step target out of range");
    }
  Exploration out;
  detail::explore_from(threads, detail::State{}, out);
  return out;
}

}  // namespace concurrency
