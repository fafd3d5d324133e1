// Lua bindings: the `hldlab` module a script gets from require, and the sandbox around it.
// Lua errors longjmp, so every C function runs its C++ work inside guarded(): exceptions are
// caught there and only then turned into a Lua error, once no C++ object is left alive.
#include "hldlab/runtime/script.hpp"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <lua.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string_view>
#include <thread>

#include "hldlab/runtime/checkers.hpp"
#include "hldlab/runtime/params.hpp"
#include "hldlab/runtime/stop.hpp"
#include "hldlab/runtime/workload_spec.hpp"

namespace hldlab {
namespace {

constexpr const char* kExperimentMeta = "hldlab.experiment";
constexpr const char* kSystemMeta = "hldlab.system";
constexpr const char* kResultsMeta = "hldlab.results";
constexpr int kHookEvery = 10000;

/// An error whose message already says where it happened (from a Lua callback).
struct ScriptError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Runner {
  const PluginRegistry& registry;
  const ScriptOptions& options;
  ScriptResult result;
  Rng script_rng;
  std::uint64_t instructions = 0;
  std::size_t memory = 0;
  std::vector<std::shared_ptr<Experiment>> experiments;
  const std::function<int(lua_State*)>* load = nullptr;  ///< loads the script (sweep workers)
  std::size_t sweeps_seen = 0;
  bool in_sweep = false;     ///< inside a sweep's run function
  bool worker_done = false;  ///< a sweep worker did its runs: the script stops here

  void out(const std::string& text) {
    result.output += text;
    if (options.print_reports) {
      FILE* to = options.reports_to_stderr ? stderr : stdout;
      std::fwrite(text.data(), 1, text.size(), to);
      std::fflush(to);
    }
  }
};

Runner& runner(lua_State* L) {
  return **static_cast<Runner**>(lua_getextraspace(L));
}

template <class F>
int guarded(lua_State* L, F&& body) {
  bool located = false;
  {
    std::string error;
    try {
      return body();
    } catch (const ScriptError& e) {
      error = e.what();
      located = true;
    } catch (const std::exception& e) {
      error = e.what();
    }
    lua_pushlstring(L, error.data(), error.size());
  }
  if (!located) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

// ---- Lua <-> Value ---------------------------------------------------------------------------

Value to_value(lua_State* L, int index, const std::string& what, int depth = 0) {
  index = lua_absindex(L, index);
  switch (lua_type(L, index)) {
    case LUA_TNIL:
      return Value();
    case LUA_TBOOLEAN:
      return Value(lua_toboolean(L, index) != 0);
    case LUA_TNUMBER:
      if (lua_isinteger(L, index)) return Value(static_cast<std::int64_t>(lua_tointeger(L, index)));
      return Value(lua_tonumber(L, index));
    case LUA_TSTRING: {
      std::size_t n = 0;
      const char* s = lua_tolstring(L, index, &n);
      return Value(std::string(s, n));
    }
    case LUA_TTABLE: {
      if (depth > 32) throw std::invalid_argument(what + " is nested too deeply (a cycle?)");
      Map map;
      std::vector<std::pair<lua_Integer, Value>> items;
      lua_pushnil(L);
      while (lua_next(L, index) != 0) {
        if (lua_type(L, -2) == LUA_TSTRING) {
          std::string key = lua_tostring(L, -2);
          map[key] = to_value(L, -1, what + "." + key, depth + 1);
        } else if (lua_isinteger(L, -2)) {
          const lua_Integer k = lua_tointeger(L, -2);
          items.emplace_back(k, to_value(L, -1, what + "[" + std::to_string(k) + "]", depth + 1));
        } else {
          lua_pop(L, 2);
          throw std::invalid_argument(what + " has a key that is neither a string nor an integer");
        }
        lua_pop(L, 1);
      }
      if (items.empty()) return Value(std::move(map));
      if (!map.empty()) throw std::invalid_argument(what + " mixes a list part and named fields");
      List list(items.size());
      for (auto& [k, v] : items) {
        if (k < 1 || k > static_cast<lua_Integer>(list.size()))
          throw std::invalid_argument(what + " is a list with holes");
        list[static_cast<std::size_t>(k - 1)] = std::move(v);
      }
      return Value(std::move(list));
    }
    default:
      throw std::invalid_argument(what + " cannot be a " + luaL_typename(L, index));
  }
}

void push_value(lua_State* L, const Value& v) {
  switch (v.kind()) {
    case Value::Kind::nil:
      lua_pushnil(L);
      break;
    case Value::Kind::boolean:
      lua_pushboolean(L, v.as_bool());
      break;
    case Value::Kind::integer:
      lua_pushinteger(L, v.as_int());
      break;
    case Value::Kind::real:
      lua_pushnumber(L, v.as_double());
      break;
    case Value::Kind::string:
      lua_pushlstring(L, v.as_string().data(), v.as_string().size());
      break;
    case Value::Kind::list:
      lua_createtable(L, static_cast<int>(v.as_list().size()), 0);
      for (std::size_t i = 0; i < v.as_list().size(); ++i) {
        push_value(L, v.as_list()[i]);
        lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
      }
      break;
    case Value::Kind::map:
      lua_createtable(L, 0, static_cast<int>(v.as_map().size()));
      for (const auto& [k, item] : v.as_map()) {
        push_value(L, item);
        lua_setfield(L, -2, k.c_str());
      }
      break;
  }
}

// `what` names the argument in error messages; a string_view, so that the calls of a Lua loop
// (sys:call) build no string unless there is an error.
Map table_arg(lua_State* L, int index, std::string_view what, bool optional = false) {
  if (optional && lua_isnoneornil(L, index)) return {};
  if (lua_type(L, index) != LUA_TTABLE)
    throw std::invalid_argument(std::string(what) + " must be a table, not " +
                                luaL_typename(L, index));
  Value v = to_value(L, index, std::string(what));
  if (v.kind() != Value::Kind::map)
    throw std::invalid_argument(std::string(what) + " must have named fields");
  return std::move(v).as_map();
}

std::string string_arg(lua_State* L, int index, std::string_view what) {
  if (lua_type(L, index) != LUA_TSTRING)
    throw std::invalid_argument(std::string(what) + " must be a string, not " +
                                luaL_typename(L, index));
  std::size_t length = 0;
  const char* text = lua_tolstring(L, index, &length);
  return {text, length};
}

std::string field_string(const Map& m, const std::string& key, const std::string& what) {
  auto it = m.find(key);
  if (it == m.end() || it->second.kind() != Value::Kind::string)
    throw std::invalid_argument(what + " needs " + key + " = \"...\" (a string)");
  return it->second.as_string();
}

void reject_unknown(const Map& m, const std::vector<std::string>& known, const std::string& what) {
  for (const auto& [key, value] : m) {
    (void)value;
    if (std::find(known.begin(), known.end(), key) == known.end())
      throw std::invalid_argument(what + ": unknown field '" + key + "'" +
                                  did_you_mean(key, known));
  }
}

// ---- userdata ----------------------------------------------------------------------------------

struct ExperimentBox {
  std::shared_ptr<Experiment> experiment;
};
struct SystemBox {
  std::shared_ptr<Experiment> experiment;
  SystemSlot* slot;
};

template <class Box>
Box& box_arg(lua_State* L, int index, const char* meta, const char* what) {
  void* p = luaL_testudata(L, index, meta);
  if (p == nullptr)
    throw std::invalid_argument(std::string(what) +
                                " expected (did you write '.' instead of ':'?)");
  return *static_cast<Box*>(p);
}

template <class Box>
int box_gc(lua_State* L) {
  static_cast<Box*>(lua_touserdata(L, 1))->~Box();
  return 0;
}

void push_system(lua_State* L, std::shared_ptr<Experiment> experiment, SystemSlot* slot) {
  new (lua_newuserdatauv(L, sizeof(SystemBox), 0)) SystemBox{std::move(experiment), slot};
  luaL_setmetatable(L, kSystemMeta);
}

/// The message that unwinds a script stopped by SIGINT/SIGTERM or --timeout.
std::string stop_message() {
  return stop_reason() == StopReason::timeout
             ? "stopped: the run exceeded its time limit (--timeout)"
             : "interrupted";
}

/// Message handler of every protected call: an error raised with something else than a
/// string (error({}), error()) gets the location of the error() call and a description, and a
/// yield from a callback gets an explanation.
int error_message(lua_State* L) {
  if (lua_type(L, 1) == LUA_TSTRING) {
    std::string message = lua_tostring(L, 1);
    const char* explanation = " (exp:at and sys:at callbacks run to completion: they cannot yield)";
    if (message.rfind("attempt to yield", 0) == 0) {  // raised inside coroutine.yield: no place
      luaL_where(L, 2);
      message = lua_tostring(L, -1) + message + explanation;
    }
    lua_pushstring(L, message.c_str());
    return 1;
  }
  luaL_where(L, 2);  // level 1 is error() itself, level 2 the Lua code that called it
  lua_pushfstring(L, "%serror raised with a %s instead of a message", lua_tostring(L, -1),
                  luaL_typename(L, 1));
  return 1;
}

/// lua_pcall with error_message as the handler; returns the error text, or "" on success
/// (then the `results` results are on the stack).
std::string protected_call(lua_State* L, int nargs, int results = 0) {
  const int base = lua_gettop(L) - nargs;  // the function's index
  lua_pushcfunction(L, error_message);
  lua_insert(L, base);
  const int status = lua_pcall(L, nargs, results, base);
  lua_remove(L, base);
  if (status == LUA_OK) return "";
  std::string message = lua_tostring(L, -1) ? lua_tostring(L, -1) : "error object is not a string";
  lua_pop(L, 1);
  return message;
}

/// Call the function at the top of the stack (below its `nargs` arguments); Lua errors become
/// ScriptError carrying the callback's own file:line.
void call_lua(lua_State* L, int nargs) {
  const std::string error = protected_call(L, nargs);
  if (!error.empty()) throw ScriptError(error);
}

/// Schedule the Lua function at stack index `fn` at time `t`, for one system or all of them.
void schedule_callback(lua_State* L, const std::shared_ptr<Experiment>& experiment, Time t, int fn,
                       SystemSlot* only) {
  lua_pushvalue(L, fn);
  const int ref = luaL_ref(L, LUA_REGISTRYINDEX);
  std::weak_ptr<Experiment> weak = experiment;
  experiment->at(t, [L, ref, weak, only] {
    auto e = weak.lock();
    if (!e) return;
    for (const auto& slot : e->systems()) {
      if ((only != nullptr && slot.get() != only) || !e->active(*slot)) continue;
      lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
      push_system(L, e, slot.get());
      call_lua(L, 1);
    }
  });
}

// ---- results -----------------------------------------------------------------------------------

void set_number(lua_State* L, const char* key, double v) {
  lua_pushnumber(L, v);
  lua_setfield(L, -2, key);
}
void set_integer(lua_State* L, const char* key, std::int64_t v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, key);
}
void set_string(lua_State* L, const char* key, const std::string& v) {
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, key);
}

void push_row(lua_State* L, const SystemResult& s) {
  lua_newtable(L);
  set_string(L, "label", s.label);
  set_string(L, "lesson", s.lesson);
  set_string(L, "variant", s.variant);
  set_string(L, "kind", s.naive ? "naive" : "fix");
  lua_pushboolean(L, s.naive);
  lua_setfield(L, -2, "naive");
  if (!s.error.empty()) set_string(L, "error", s.error);
  set_integer(L, "requests", s.requests);
  set_integer(L, "completed", s.completed);
  set_integer(L, "unfinished", s.unfinished);
  set_number(L, "end", s.end);
  set_integer(L, "ok", s.count(Outcome::ok));
  set_integer(L, "hits", s.count(Outcome::hit));
  set_integer(L, "misses", s.count(Outcome::miss));
  set_integer(L, "rejected", s.count(Outcome::rejected));
  set_integer(L, "errors", s.count(Outcome::error));
  set_integer(L, "timeouts", s.count(Outcome::timeout));
  set_number(L, "p50", s.p50);
  set_number(L, "p90", s.p90);
  set_number(L, "p99", s.p99);
  set_number(L, "p999", s.p999);
  set_number(L, "max", s.max);
  set_number(L, "mean", s.mean);
  set_number(L, "p50_ok", s.p50_ok);
  set_number(L, "p99_ok", s.p99_ok);
  set_number(L, "p999_ok", s.p999_ok);
  set_number(L, "throughput", s.throughput);
  lua_newtable(L);  // lower_bounds.p99 == true: the P99 is censored by unfinished requests
  for (const auto& name : s.lower_bounds) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, name.c_str());
  }
  lua_setfield(L, -2, "lower_bounds");
  if (s.hit_ratio >= 0) set_number(L, "hit_ratio", s.hit_ratio);
  push_value(L, Value(s.figures));
  lua_setfield(L, -2, "figures");
  push_value(L, Value(s.metrics));
  lua_setfield(L, -2, "metrics");
  lua_newtable(L);
  for (const auto& [name, n] : s.faults) set_integer(L, name.c_str(), n);
  lua_setfield(L, -2, "faults");
  for (const Map* extra : {&s.figures, &s.metrics})  // figures also readable as row.<name>
    for (const auto& [name, v] : *extra) {
      lua_getfield(L, -1, name.c_str());
      const bool taken = !lua_isnil(L, -1);
      lua_pop(L, 1);
      if (!taken) {
        push_value(L, v);
        lua_setfield(L, -2, name.c_str());
      }
    }
  luaL_setmetatable(L, kResultsMeta);
}

/// `id`: the index in ScriptResult::experiments, -1 for an experiment of a sweep's run.
void push_results(lua_State* L, const ExperimentResult& r, std::int64_t id) {
  lua_newtable(L);
  set_integer(L, "__id", id);
  set_string(L, "experiment", r.name);
  set_integer(L, "seed", static_cast<std::int64_t>(r.seed));
  set_number(L, "duration", r.duration);
  lua_pushboolean(L, r.interrupted);
  lua_setfield(L, -2, "interrupted");
  for (std::size_t i = 0; i < r.systems.size(); ++i) {
    push_row(L, r.systems[i]);
    lua_pushvalue(L, -1);
    lua_rawseti(L, -3, static_cast<lua_Integer>(i + 1));
    lua_setfield(L, -2, r.systems[i].label.c_str());
  }
  luaL_setmetatable(L, kResultsMeta);
}

// ---- the hldlab module -------------------------------------------------------------------------

int lab_experiment(lua_State* L) {
  return guarded(L, [&] {
    const Map spec = table_arg(L, 1, "lab.experiment{...}");
    reject_unknown(spec, {"name", "seed", "duration", "drain", "warmup", "max_requests"},
                   "lab.experiment");
    ExperimentConfig config;
    const Value v(spec);
    if (!v["name"].is_nil()) config.name = field_string(spec, "name", "lab.experiment");
    Runner& r = runner(L);
    if (r.options.seed && !r.in_sweep)  // a sweep's run uses the seed it is given
      config.seed = *r.options.seed;
    else if (!v["seed"].is_nil()) {
      if (v["seed"].kind() != Value::Kind::integer || v["seed"].as_int() < 0)
        throw std::invalid_argument("lab.experiment: seed must be a non-negative integer");
      config.seed = static_cast<std::uint64_t>(v["seed"].as_int());
    }
    if (!v["duration"].is_nil()) config.duration = duration_from(v["duration"], "duration");
    if (!v["drain"].is_nil()) config.drain = duration_from(v["drain"], "drain");
    if (!v["warmup"].is_nil()) config.warmup = duration_from(v["warmup"], "warmup");
    if (!v["max_requests"].is_nil()) {
      if (!v["max_requests"].is_number())
        throw std::invalid_argument("lab.experiment: max_requests must be a number");
      config.max_requests = v["max_requests"].as_double();
    }
    config.memory_budget = r.options.memory_budget;
    auto experiment = std::make_shared<Experiment>(config);
    r.experiments.push_back(experiment);
    new (lua_newuserdatauv(L, sizeof(ExperimentBox), 0)) ExperimentBox{experiment};
    luaL_setmetatable(L, kExperimentMeta);
    return 1;
  });
}

// ---- histories and their checkers -------------------------------------------------------------

/// exp:add{ history = true } (at most kDefaultHistory operations) or { history = N }.
constexpr std::int64_t kDefaultHistory = 200000;
std::size_t history_limit(const Value& v) {
  if (v.is_nil() || v == Value(false)) return 0;
  if (v == Value(true)) return kDefaultHistory;
  if (v.kind() == Value::Kind::integer && v.as_int() >= 1 && v.as_int() <= 10'000'000)
    return static_cast<std::size_t>(v.as_int());
  throw std::invalid_argument("exp:add: history must be true or a number of operations (1..1e7)");
}

/// The system argument of lab.check_* and lab.steady_state: a system (exp:add's result) or its
/// row of the results (the latest system with that label, recording a history if `history`).
SystemSlot& system_arg(lua_State* L, const char* what, bool history) {
  SystemSlot* slot = nullptr;
  if (void* p = luaL_testudata(L, 1, kSystemMeta)) {
    slot = static_cast<SystemBox*>(p)->slot;
  } else if (lua_type(L, 1) == LUA_TTABLE) {
    lua_getfield(L, 1, "label");
    const std::string label = lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
    lua_pop(L, 1);
    const auto& experiments = runner(L).experiments;
    for (auto e = experiments.rbegin(); e != experiments.rend() && slot == nullptr; ++e)
      for (const auto& s : (*e)->systems())
        if (s->label() == label && (!history || s->history() != nullptr)) slot = s.get();
  }
  if (slot == nullptr)
    throw std::invalid_argument(std::string(what) + " takes a system" +
                                (history ? " added with history = true" : "") +
                                ", or its results row");
  if (history && slot->history() == nullptr)
    throw std::invalid_argument(std::string(what) + ": " + slot->label() +
                                " records no history (exp:add{ ..., history = true })");
  return *slot;
}

int lab_check_linearizable(lua_State* L) {
  return guarded(L, [&] {
    SystemSlot& slot = system_arg(L, "lab.check_linearizable(system)", true);
    const LinearizabilityResult result = check_linearizable(*slot.history());
    runner(L).out(result_text(slot.label(), result));
    push_value(L, result_value(result));
    return 1;
  });
}

int lab_check_transactions(lua_State* L) {
  return guarded(L, [&] {
    SystemSlot& slot = system_arg(L, "lab.check_transactions(system)", true);
    const TransactionsResult result = check_transactions(*slot.history());
    runner(L).out(result_text(slot.label(), result));
    push_value(L, result_value(result));
    return 1;
  });
}

/// lab.steady_state(system, { success = 0.999, p99 = "300ms", from =, to = }): the steady-state
/// hypothesis of chaos engineering, judged on every window of the system's timeline (1 s, or
/// wider for long runs) that starts in [from, to) (default: the end of the warm-up to the end of
/// the traffic). A window violates it when fewer than `success` of the requests completed in it
/// got an answer (ok, hit or miss), when their P99 exceeds `p99`, or when requests arrived and
/// none completed (a hang). Returns { held, windows, violating, first_violation, worst_success,
/// worst_p99, window, violations = { {at, success, p99, completed, why}, ... } (the first 100) }.
int lab_steady_state(lua_State* L) {
  return guarded(L, [&] {
    const char* what = "lab.steady_state(system, hypothesis)";
    SystemSlot& slot = system_arg(L, what, false);
    const Map spec = table_arg(L, 2, "lab.steady_state hypothesis");
    reject_unknown(spec, {"success", "p99", "from", "to"}, "lab.steady_state");
    const Value v(spec);
    if (v["success"].is_nil() && v["p99"].is_nil())
      throw std::invalid_argument("lab.steady_state needs success = (a fraction) or p99 = (a time)");
    double min_success = 0;
    if (!v["success"].is_nil()) {
      if (!v["success"].is_number() || v["success"].as_double() < 0 || v["success"].as_double() > 1)
        throw std::invalid_argument("lab.steady_state: success must be a fraction in [0, 1]");
      min_success = v["success"].as_double();
    }
    const double max_p99 =
        v["p99"].is_nil() ? INFINITY : to_seconds(duration_from(v["p99"], "lab.steady_state p99"));
    const ExperimentConfig& config = slot.experiment_config();
    const Time from = v["from"].is_nil() ? config.warmup : duration_from(v["from"], "from");
    const Time to = v["to"].is_nil() ? config.duration : duration_from(v["to"], "to");
    if (to <= from) throw std::invalid_argument("lab.steady_state: `to` must be after `from`");
    const Recorder& recorder = slot.recorder();
    if (slot.end() < 0 || recorder.windows().empty())
      throw std::invalid_argument(std::string(what) + ": " + slot.label() + " has not run yet");

    const Time width = recorder.window();
    std::int64_t judged = 0, violating = 0;
    double worst_success = 1, worst_p99 = 0, first = -1;
    List violations;
    for (std::size_t i = 0; i < recorder.windows().size(); ++i) {
      const Time start = static_cast<Time>(i) * width;
      if (start < from || start >= to) continue;
      const Recorder::Window& w = recorder.windows()[i];
      std::int64_t completed = 0;
      for (const std::int64_t n : w.outcomes) completed += n;
      if (completed == 0 && w.arrivals == 0) continue;  // nothing happened: nothing to judge
      ++judged;
      const std::int64_t answered = w.outcomes[static_cast<int>(Outcome::ok)] +
                                    w.outcomes[static_cast<int>(Outcome::hit)] +
                                    w.outcomes[static_cast<int>(Outcome::miss)];
      const double success =
          completed == 0 ? 0 : static_cast<double>(answered) / static_cast<double>(completed);
      worst_success = std::min(worst_success, success);
      if (completed > 0) worst_p99 = std::max(worst_p99, w.p99);
      std::string why;
      if (completed == 0)
        why = "no request completed";
      else if (success < min_success)
        why = "success below the hypothesis";
      else if (w.p99 > max_p99)
        why = "P99 above the hypothesis";
      if (why.empty()) continue;
      ++violating;
      if (first < 0) first = to_seconds(start);
      if (violations.size() < 100)
        violations.push_back(Map{{"at", to_seconds(start)},
                                 {"success", success},
                                 {"p99", w.p99},
                                 {"completed", completed},
                                 {"why", why}});
    }
    Map out{{"held", violating == 0},        {"windows", judged},
            {"violating", violating},        {"worst_success", worst_success},
            {"worst_p99", worst_p99},        {"window", to_seconds(width)},
            {"violations", std::move(violations)}};
    if (first >= 0) out["first_violation"] = first;
    push_value(L, Value(std::move(out)));
    return 1;
  });
}

int exp_add(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<ExperimentBox>(L, 1, kExperimentMeta, "exp:add{...}: experiment");
    const Map spec = table_arg(L, 2, "exp:add{...}");
    reject_unknown(spec, {"lesson", "variant", "params", "label", "history"}, "exp:add");
    const Value v(spec);
    Map params;
    if (!v["params"].is_nil()) {
      if (v["params"].kind() != Value::Kind::map)
        throw std::invalid_argument("exp:add: params must be a table of named values");
      params = v["params"].as_map();
    }
    std::string label;
    if (!v["label"].is_nil()) label = field_string(spec, "label", "exp:add");
    for (const char* reserved : {"experiment", "seed", "duration", "interrupted", "__id"})
      if (label == reserved || (label.empty() && v["variant"] == Value(reserved)))
        throw std::invalid_argument("exp:add: '" + std::string(reserved) +
                                    "' is a field of the results; give the system another label");
    SystemSlot& slot = box.experiment->add(
        runner(L).registry, field_string(spec, "lesson", "exp:add"),
        field_string(spec, "variant", "exp:add"), params, label, history_limit(v["history"]));
    push_system(L, box.experiment, &slot);
    return 1;
  });
}

int exp_workload(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<ExperimentBox>(L, 1, kExperimentMeta, "exp:workload{...}: experiment");
    const auto& dirs = runner(L).options.data_dirs;
    box.experiment->set_workload(
        parse_workload(Value(table_arg(L, 2, "exp:workload{...}")),
                       [&dirs](const std::string& name) { return resolve_data_file(name, dirs); }));
    return 0;
  });
}

int exp_at(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<ExperimentBox>(L, 1, kExperimentMeta, "exp:at(time, fn): experiment");
    const Time t = duration_from(to_value(L, 2, "time"), "exp:at time");
    if (lua_type(L, 3) != LUA_TFUNCTION)
      throw std::invalid_argument("exp:at(time, fn): fn must be a function(sys)");
    schedule_callback(L, box.experiment, t, 3, nullptr);
    return 0;
  });
}

int exp_run(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<ExperimentBox>(L, 1, kExperimentMeta, "exp:run(): experiment");
    Runner& r = runner(L);
    if (r.worker_done) throw std::runtime_error("sweep worker done");
    if (r.in_sweep) {  // one of many runs: not exported, not kept, not run alone
      RunOptions options;
      options.jobs = r.options.jobs;
      if (stop_requested()) throw std::runtime_error(stop_message());
      const ExperimentResult result = box.experiment->run(options);
      if (box.experiment->interrupted()) throw std::runtime_error(stop_message());
      push_results(L, result, -1);
      return 1;
    }
    if (r.options.on_run_start) r.options.on_run_start(box.experiment);
    RunOptions options;
    options.pace = r.options.pace;
    options.jobs = r.options.jobs;
    if (r.options.run_alone && r.options.run_alone->first == r.result.experiments.size())
      box.experiment->run_alone(r.options.run_alone->second);
    spdlog::debug("running experiment {}", box.experiment->config().name);
    if (stop_requested()) throw std::runtime_error(stop_message());
    struct RunEnd {  // on_run_end, however run() leaves
      Runner& r;
      const std::shared_ptr<Experiment>& e;
      ~RunEnd() {
        if (r.options.on_run_end) r.options.on_run_end(e);
      }
    } run_end{r, box.experiment};
    r.result.experiments.push_back(box.experiment->run(options));
    if (box.experiment->interrupted()) {  // show what it measured, then stop the script
      r.result.stopped = stop_reason();
      r.out(format_table(r.result.experiments.back()) + "\n");
      throw std::runtime_error(stop_message() + " at " + format_duration(box.experiment->now()) +
                               " of virtual time");
    }
    push_results(L, r.result.experiments.back(),
                 static_cast<std::int64_t>(r.result.experiments.size() - 1));
    return 1;
  });
}

int exp_systems(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<ExperimentBox>(L, 1, kExperimentMeta, "exp:systems(): experiment");
    lua_newtable(L);
    lua_Integer i = 1;
    for (const auto& slot : box.experiment->systems()) {
      push_system(L, box.experiment, slot.get());
      lua_rawseti(L, -2, i++);
    }
    return 1;
  });
}

int sys_inject(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<SystemBox>(L, 1, kSystemMeta, "sys:inject(fault, params): system");
    box.slot->inject(string_arg(L, 2, "fault name"), table_arg(L, 3, "fault parameters", true));
    return 0;
  });
}

int sys_clear(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<SystemBox>(L, 1, kSystemMeta, "sys:clear(fault): system");
    box.slot->clear(string_arg(L, 2, "fault name"));
    return 0;
  });
}

int sys_call(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<SystemBox>(L, 1, kSystemMeta, "sys:call(op, args): system");
    const Value result = box.slot->call(string_arg(L, 2, "operation name"),
                                        table_arg(L, 3, "operation arguments", true));
    push_value(L, result);
    return 1;
  });
}

int sys_at(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<SystemBox>(L, 1, kSystemMeta, "sys:at(time, fn): system");
    const Time t = duration_from(to_value(L, 2, "time"), "sys:at time");
    if (lua_type(L, 3) != LUA_TFUNCTION)
      throw std::invalid_argument("sys:at(time, fn): fn must be a function(sys)");
    schedule_callback(L, box.experiment, t, 3, box.slot);
    return 0;
  });
}

// Methods come from a table (an upvalue) without building any C++ string; fields otherwise.
int sys_trace(lua_State* L) {
  return guarded(L, [&] {
    auto& box = box_arg<SystemBox>(L, 1, kSystemMeta, "sys:trace{from=, to=}: system");
    const Map spec = table_arg(L, 2, "sys:trace{...}");
    reject_unknown(spec, {"from", "to", "max"}, "sys:trace");
    const Value v(spec);
    if (v["from"].is_nil() || v["to"].is_nil())
      throw std::invalid_argument("sys:trace needs from and to (virtual times)");
    const double max = v["max"].is_nil() ? 2000 : v["max"].as_double();
    box.slot->trace(duration_from(v["from"], "sys:trace from"),
                    duration_from(v["to"], "sys:trace to"), static_cast<std::size_t>(max));
    return 0;
  });
}

int sys_index(lua_State* L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL) return 1;
  lua_pop(L, 1);
  return guarded(L, [&] {
    auto& box = box_arg<SystemBox>(L, 1, kSystemMeta, "system");
    const std::string key = string_arg(L, 2, "system field");
    if (key == "label")
      lua_pushstring(L, box.slot->label().c_str());
    else if (key == "variant")
      lua_pushstring(L, box.slot->variant().c_str());
    else if (key == "lesson")
      lua_pushstring(L, box.slot->info().name.c_str());
    else if (key == "naive")
      lua_pushboolean(L, box.slot->naive());
    else if (key == "now")
      lua_pushnumber(L, to_seconds(box.slot->now()));
    else
      throw std::invalid_argument(
          "a system has no field '" + key + "'" +
          did_you_mean(key, {"inject", "clear", "call", "at", "trace", "label", "variant", "lesson",
                             "naive", "now"}));
    return 1;
  });
}

int lab_report(lua_State* L) {
  return guarded(L, [&] {
    Runner& r = runner(L);
    if (r.in_sweep)
      throw std::invalid_argument(
          "lab.report inside a sweep's run function: return the figures, report the sweep");
    if (lua_type(L, 1) != LUA_TTABLE)
      throw std::invalid_argument("lab.report(r) takes the results of exp:run() or lab.sweep");
    lua_pushstring(L, "__sweep");
    lua_rawget(L, 1);  // results tables refuse unknown fields
    if (lua_isinteger(L, -1)) {
      const lua_Integer id = lua_tointeger(L, -1);
      if (id < 0 || id >= static_cast<lua_Integer>(r.result.sweeps.size()))
        throw std::invalid_argument("lab.report: not a sweep of this script");
      r.out(format_sweep(r.result.sweeps[static_cast<std::size_t>(id)]) + "\n");
      return 0;
    }
    lua_pop(L, 1);
    lua_getfield(L, 1, "__id");
    const bool ok = lua_isinteger(L, -1);
    const lua_Integer id = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (!ok || id < 0 || id >= static_cast<lua_Integer>(r.result.experiments.size()))
      throw std::invalid_argument("lab.report(r) takes the results of exp:run()");
    r.out(format_table(r.result.experiments[static_cast<std::size_t>(id)]) + "\n");
    return 0;
  });
}

/// lab.expect(cond, message[, {headline = true}]): a claim of the lesson. lab.check(cond,
/// message): a sanity check ("every purchase ended once"), silent when it holds and not counted
/// as a claim; both fail the script (exit 1) when false.
int expectation(lua_State* L, bool claim) {
  return guarded(L, [&] {
    Runner& r = runner(L);
    if (r.in_sweep)
      throw std::invalid_argument(std::string(claim ? "lab.expect" : "lab.check") +
                                  " inside a sweep's run function: return the figure (a "
                                  "boolean counts as 1 or 0) and state the claim over the sweep");
    Expectation e;
    e.claim = claim;
    e.passed = lua_toboolean(L, 1) != 0;
    e.message = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "(no message)";
    if (!lua_isnoneornil(L, 3)) {
      if (!claim) throw std::invalid_argument("lab.check(cond, message) takes no options");
      const Map options = table_arg(L, 3, "lab.expect options");
      reject_unknown(options, {"headline"}, "lab.expect");
      e.headline = Value(options)["headline"].kind() == Value::Kind::boolean &&
                   Value(options)["headline"].as_bool();
    }
    luaL_where(L, 1);
    e.where = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (!e.where.empty() && e.where.back() == ' ') e.where.pop_back();
    if (!e.where.empty() && e.where.back() == ':') e.where.pop_back();
    if (claim || !e.passed)
      r.out(std::string(e.passed ? "  ok    " : "  FAIL  ") + (claim ? "" : "check: ") + e.message +
            (e.passed ? "" : "  (" + e.where + ")") + "\n");
    r.result.expectations.push_back(e);
    lua_pushboolean(L, e.passed);
    return 1;
  });
}

int lab_expect(lua_State* L) {
  return expectation(L, true);
}

int lab_check(lua_State* L) {
  return expectation(L, false);
}

int lab_duration(lua_State* L) {
  return guarded(L, [&] {
    lua_pushnumber(L, to_seconds(duration_from(to_value(L, 1, "duration"), "lab.duration")));
    return 1;
  });
}

int lab_lessons(lua_State* L) {
  return guarded(L, [&] {
    lua_newtable(L);
    lua_Integer i = 1;
    for (const auto& name : runner(L).registry.names()) {
      lua_pushstring(L, name.c_str());
      lua_rawseti(L, -2, i++);
    }
    return 1;
  });
}

int lab_info(lua_State* L) {
  return guarded(L, [&] {
    const LessonInfo& info = runner(L).registry.get(string_arg(L, 1, "lesson name")).lesson->info();
    Map m{{"name", info.name}, {"title", info.title}, {"problem", info.problem}, {"fix", info.fix}};
    List variants, production;
    for (const auto& v : info.variants)
      variants.push_back(Map{{"name", v.name}, {"naive", v.naive}, {"summary", v.summary}});
    for (const auto& p : info.production) production.push_back(p);
    m["variants"] = std::move(variants);
    m["production"] = std::move(production);
    push_value(L, Value(std::move(m)));
    return 1;
  });
}

/// lab.poisson{...}, lab.zipf{...}, ...: a copy of the table with `kind` set (checked later,
/// when the workload reads it).
int lab_tagged(lua_State* L) {
  const char* kind = lua_tostring(L, lua_upvalueindex(1));
  if (lua_type(L, 1) != LUA_TTABLE)
    return luaL_error(L, "lab.%s takes a table: lab.%s{...}", kind, kind);
  lua_newtable(L);
  lua_pushnil(L);
  while (lua_next(L, 1) != 0) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -4);
  }
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "kind");
  return 1;
}

int lab_fixed(lua_State* L) {
  lua_newtable(L);
  lua_pushvalue(L, 1);
  lua_setfield(L, -2, "value");
  lua_pushstring(L, "fixed");
  lua_setfield(L, -2, "kind");
  return 1;
}

// ---- sandbox -----------------------------------------------------------------------------------

ScriptResult run_chunk(const std::function<int(lua_State*)>& load, const PluginRegistry& registry,
                       const ScriptOptions& options);

// ---- sweeps ------------------------------------------------------------------------------------

/// Pushes a Stats as a table {n, mean, sd, lo, hi, min, max}.
void push_stats(lua_State* L, const Stats& st) {
  lua_createtable(L, 0, 7);
  set_integer(L, "n", static_cast<std::int64_t>(st.n));
  set_number(L, "mean", st.mean);
  set_number(L, "sd", st.sd);
  set_number(L, "lo", st.lo);
  set_number(L, "hi", st.hi);
  set_number(L, "min", st.min);
  set_number(L, "max", st.max);
}

/// What a sweep's run function returned (at the top of the stack): named numbers, nested
/// tables flattened as "a.b", booleans as 1 or 0.
void collect_values(lua_State* L, int index, const std::string& prefix,
                    std::vector<std::pair<std::string, double>>& out, int depth = 0) {
  index = lua_absindex(L, index);
  if (depth > 8) throw std::invalid_argument("the sweep's run returned tables nested too deeply");
  std::vector<std::pair<std::string, int>> keys;  // sorted for a fixed order
  lua_pushnil(L);
  while (lua_next(L, index) != 0) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      throw std::invalid_argument("the sweep's run must return a table of named figures");
    }
    keys.emplace_back(prefix + lua_tostring(L, -2), 0);
    lua_pop(L, 1);
  }
  std::sort(keys.begin(), keys.end());
  for (const auto& [name, unused] : keys) {
    lua_getfield(L, index, name.substr(prefix.size()).c_str());
    if (lua_type(L, -1) == LUA_TNUMBER)
      out.emplace_back(name, lua_tonumber(L, -1));
    else if (lua_type(L, -1) == LUA_TBOOLEAN)
      out.emplace_back(name, lua_toboolean(L, -1) ? 1.0 : 0.0);
    else if (lua_type(L, -1) == LUA_TTABLE)
      collect_values(L, -1, name + ".", out, depth + 1);
    else {
      const std::string type = luaL_typename(L, -1);
      lua_pop(L, 1);
      throw std::invalid_argument("the sweep's run returned '" + name + "' = a " + type +
                                  ": figures are numbers or booleans");
    }
    lua_pop(L, 1);
  }
}

/// Runs run `i` of sweep `s` with the run function at stack index `fn`.
SweepRun run_point(lua_State* L, int fn, const SweepResult& s, std::size_t i) {
  Runner& r = runner(L);
  SweepRun run;
  run.index = i;
  run.seed = s.seeds[i % s.seeds.size()];
  const Map params = s.point_params(i / s.seeds.size());
  lua_pushvalue(L, fn);
  push_value(L, Value(params));
  lua_pushinteger(L, static_cast<lua_Integer>(run.seed));
  r.in_sweep = true;
  const std::string error = protected_call(L, 2, 1);
  r.in_sweep = false;
  auto where = [&] {
    std::string w = "sweep '" + s.name + "' at";
    for (const auto& [k, v] : params) w += " " + k + "=" + format_value(v);
    return w + " seed " + std::to_string(run.seed) + ": ";
  };
  if (!error.empty()) throw ScriptError(where() + error);
  try {
    if (lua_type(L, -1) != LUA_TTABLE)
      throw std::invalid_argument("the run function must return a table of named figures");
    collect_values(L, -1, "", run.values);
  } catch (const std::exception& e) {
    lua_pop(L, 1);
    throw ScriptError(where() + e.what());
  }
  lua_pop(L, 1);
  return run;
}

/// Runs the runs of `s` that are `index` modulo `count` within this process's shard.
void run_share(lua_State* L, int fn, SweepResult& s, std::size_t index, std::size_t count) {
  const auto [shard, shards] = runner(L).options.shard;
  std::size_t mine = 0;
  for (std::size_t i = 0; i < s.total_runs(); ++i)
    if (in_shard(i, shard, shards) && mine++ % count == index)
      s.runs.push_back(run_point(L, fn, s, i));
}

/// Pushes the Lua view of a sweep: name, seeds, params, points (params + stats per figure with
/// the per-seed values) and the method at{...}.
void push_sweep(lua_State* L, const SweepResult& s, std::size_t id) {
  lua_newtable(L);
  set_integer(L, "__sweep", static_cast<std::int64_t>(id));
  set_string(L, "name", s.name);
  lua_createtable(L, static_cast<int>(s.seeds.size()), 0);
  for (std::size_t i = 0; i < s.seeds.size(); ++i) {
    lua_pushinteger(L, static_cast<lua_Integer>(s.seeds[i]));
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "seeds");
  Map params;
  for (const auto& [name, values] : s.params) params[name] = Value(values);
  push_value(L, Value(params));
  lua_setfield(L, -2, "params");
  const auto figures = s.figures();
  lua_createtable(L, static_cast<int>(s.points()), 0);
  for (std::size_t p = 0; p < s.points(); ++p) {
    lua_newtable(L);
    push_value(L, Value(s.point_params(p)));
    lua_setfield(L, -2, "params");
    for (const auto& f : figures) {
      push_stats(L, s.stats(p, f));
      lua_createtable(L, static_cast<int>(s.seeds.size()), 0);  // per seed, NaN where not run
      for (std::size_t k = 0; k < s.seeds.size(); ++k) {
        double v = std::nan("");
        const std::size_t index = p * s.seeds.size() + k;
        for (const auto& run : s.runs)
          if (run.index == index)
            for (const auto& [name, value] : run.values)
              if (name == f) v = value;
        lua_pushnumber(L, v);
        lua_rawseti(L, -2, static_cast<lua_Integer>(k + 1));
      }
      lua_setfield(L, -2, "values");
      lua_setfield(L, -2, f.c_str());
    }
    lua_rawseti(L, -2, static_cast<lua_Integer>(p + 1));
  }
  lua_setfield(L, -2, "points");
  lua_getfield(L, LUA_REGISTRYINDEX, "hldlab.sweep_at");
  lua_setfield(L, -2, "at");
}

/// sweep:at{ name = value, ... }: the one point with these parameter values.
int sweep_at(lua_State* L) {
  return guarded(L, [&] {
    if (lua_type(L, 1) != LUA_TTABLE) throw std::invalid_argument("use sweep:at{...}, with ':'");
    const Map where = table_arg(L, 2, "sweep:at{...}");
    lua_getfield(L, 1, "points");
    const int points = lua_gettop(L);
    int found = 0;
    for (lua_Integer i = 1; lua_rawgeti(L, points, i) == LUA_TTABLE; ++i) {
      lua_getfield(L, -1, "params");
      const Value params = to_value(L, -1, "params");
      lua_pop(L, 1);
      bool match = true;
      for (const auto& [k, v] : where) {
        if (params[k].is_nil())
          throw std::invalid_argument("sweep:at: the sweep has no parameter '" + k + "'");
        match = match && (params[k] == v || (params[k].is_number() && v.is_number() &&
                                             params[k].as_double() == v.as_double()));
      }
      if (match) {
        if (found) throw std::invalid_argument("sweep:at: more than one point matches");
        found = lua_gettop(L);
      } else {
        lua_pop(L, 1);
      }
    }
    if (!found) throw std::invalid_argument("sweep:at: no point has these parameter values");
    lua_pushvalue(L, found);
    return 1;
  });
}

/// lab.sweep{ name, seeds = N | {s1, s2, ...}, params = { name = {values} }, run = fn }:
/// run(point, seed) for every combination of parameter values on every seed, on --jobs worker
/// threads (each a Lua state re-running the script up to this sweep), merged in a fixed order.
int lab_sweep(lua_State* L) {
  return guarded(L, [&] {
    Runner& r = runner(L);
    if (r.in_sweep) throw std::invalid_argument("lab.sweep inside a sweep's run function");
    if (r.worker_done) throw std::runtime_error("sweep worker done");
    if (lua_type(L, 1) != LUA_TTABLE)
      throw std::invalid_argument(
          "lab.sweep{ seeds = N, params = {...}, run = function(point, seed) ... end }");
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
      const std::string key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
      lua_pop(L, 1);
      if (key != "name" && key != "seeds" && key != "params" && key != "run")
        throw std::invalid_argument("lab.sweep: unknown field '" + key +
                                    "' (fields: name, seeds, params, run)");
    }
    SweepResult s;
    const std::size_t k = r.sweeps_seen++;
    lua_getfield(L, 1, "name");
    s.name =
        lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "sweep " + std::to_string(k + 1);
    lua_getfield(L, 1, "seeds");
    const Value seeds = to_value(L, -1, "lab.sweep seeds");
    if (seeds.kind() == Value::Kind::integer && seeds.as_int() >= 1 && seeds.as_int() <= 100000) {
      const std::uint64_t first = r.options.seed.value_or(1);
      for (std::int64_t i = 0; i < seeds.as_int(); ++i)
        s.seeds.push_back(first + static_cast<std::uint64_t>(i));
    } else if (seeds.kind() == Value::Kind::list) {
      for (const Value& v : seeds.as_list()) {
        if (v.kind() != Value::Kind::integer || v.as_int() < 0)
          throw std::invalid_argument("lab.sweep: seeds must be non-negative integers");
        s.seeds.push_back(static_cast<std::uint64_t>(v.as_int()));
      }
    }
    if (s.seeds.empty())
      throw std::invalid_argument(
          "lab.sweep: seeds must be a count (1..100000) or a list of seeds");
    lua_getfield(L, 1, "params");
    if (!lua_isnil(L, -1)) {
      const Map params = table_arg(L, -1, "lab.sweep params");
      for (const auto& [name, values] : params) {
        if (values.kind() != Value::Kind::list || values.as_list().empty())
          throw std::invalid_argument("lab.sweep: params." + name + " must be a list of values");
        for (const Value& v : values.as_list())
          if (!v.is_number() && v.kind() != Value::Kind::string && v.kind() != Value::Kind::boolean)
            throw std::invalid_argument("lab.sweep: params." + name +
                                        " holds a value that is not a number, string or boolean");
        s.params.emplace_back(name, values.as_list());
      }
    }
    if (s.total_runs() > 10'000'000) throw std::invalid_argument("lab.sweep: more than 10^7 runs");
    lua_getfield(L, 1, "run");
    if (lua_type(L, -1) != LUA_TFUNCTION)
      throw std::invalid_argument("lab.sweep: run must be a function(point, seed)");
    const int fn = lua_gettop(L);

    if (const auto& worker = r.options.sweep_worker) {
      if (k < worker->sweep) {  // done by the main state already
        r.result.sweeps.push_back(worker->earlier.at(k));
      } else {
        run_share(L, fn, s, worker->worker, worker->workers);
        r.result.sweeps.push_back(std::move(s));
        r.worker_done = true;
        throw std::runtime_error("sweep worker done");
      }
    } else {
      const auto [shard, shards] = r.options.shard;
      std::size_t mine = 0;
      for (std::size_t i = 0; i < s.total_runs(); ++i) mine += in_shard(i, shard, shards);
      const std::size_t workers = std::min<std::size_t>(std::max(1u, r.options.jobs), mine);
      if (workers <= 1 || r.load == nullptr) {
        run_share(L, fn, s, 0, 1);
      } else {
        auto role = std::make_shared<ScriptOptions::SweepWorker>();
        role->sweep = k;
        role->workers = workers;
        role->earlier = r.result.sweeps;
        std::vector<ScriptResult> parts(workers);
        std::vector<std::thread> threads;
        for (std::size_t w = 0; w < workers; ++w)
          threads.emplace_back([&, w] {
            ScriptOptions options = r.options;
            auto mine_role = std::make_shared<ScriptOptions::SweepWorker>(*role);
            mine_role->worker = w;
            options.sweep_worker = mine_role;
            options.print_reports = false;
            options.jobs = 1;
            options.on_run_start = nullptr;
            options.on_run_end = nullptr;
            options.run_alone.reset();
            parts[w] = run_chunk(*r.load, r.registry, options);
          });
        for (auto& t : threads) t.join();
        for (auto& part : parts) {
          if (!part.error.empty()) throw ScriptError(part.error);
          if (part.sweeps.size() != k + 1)
            throw std::runtime_error("lab.sweep: a worker did not reach sweep '" + s.name +
                                     "' (does the script depend on something outside it?)");
          for (auto& run : part.sweeps.back().runs) s.runs.push_back(std::move(run));
        }
        std::sort(s.runs.begin(), s.runs.end(),
                  [](const SweepRun& a, const SweepRun& b) { return a.index < b.index; });
      }
      r.result.sweeps.push_back(std::move(s));
    }
    push_sweep(L, r.result.sweeps.back(), r.result.sweeps.size() - 1);
    return 1;
  });
}

/// lab.mean_ci{ values }: { n, mean, sd, lo, hi, min, max } with a Student-t 95 % interval.
int lab_mean_ci(lua_State* L) {
  return guarded(L, [&] {
    const Value v = to_value(L, 1, "lab.mean_ci");
    std::vector<double> values;
    if (v.kind() == Value::Kind::list)
      for (const Value& x : v.as_list()) {
        if (!x.is_number()) throw std::invalid_argument("lab.mean_ci takes a list of numbers");
        if (!std::isnan(x.as_double())) values.push_back(x.as_double());
      }
    else if (!(v.kind() == Value::Kind::map && v.as_map().empty()))
      throw std::invalid_argument("lab.mean_ci takes a list of numbers");
    push_stats(L, mean_ci(values));
    return 1;
  });
}

int sandbox_print(lua_State* L) {
  const int n = lua_gettop(L);
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  for (int i = 1; i <= n; ++i) {
    if (i > 1) luaL_addchar(&b, '\t');
    luaL_tolstring(L, i, nullptr);
    luaL_addvalue(&b);
  }
  luaL_addchar(&b, '\n');
  luaL_pushresult(&b);
  std::size_t len = 0;
  const char* text = lua_tolstring(L, -1, &len);
  runner(L).out(std::string(text, len));
  return 0;
}

int sandbox_random(lua_State* L) {
  Rng& rng = runner(L).script_rng;
  const int n = lua_gettop(L);
  if (n == 0) {
    lua_pushnumber(L, rng.uniform());
    return 1;
  }
  lua_Integer lo = 1, hi;
  if (n == 1)
    hi = luaL_checkinteger(L, 1);
  else {
    lo = luaL_checkinteger(L, 1);
    hi = luaL_checkinteger(L, 2);
  }
  luaL_argcheck(L, lo <= hi, n, "interval is empty");
  const auto span = static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo);
  const std::uint64_t r = span == UINT64_MAX ? rng.next() : rng.below(span + 1);
  lua_pushinteger(L, static_cast<lua_Integer>(static_cast<std::uint64_t>(lo) + r));
  return 1;
}

int sandbox_randomseed(lua_State* L) {
  runner(L).script_rng.reseed(static_cast<std::uint64_t>(luaL_checkinteger(L, 1)));
  return 0;
}

int sandbox_require(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  if (std::strcmp(name, "hldlab") != 0)
    return luaL_error(L, "module '%s' is not available in the hldlab sandbox (only \"hldlab\")",
                      name);
  lua_getfield(L, LUA_REGISTRYINDEX, "hldlab.module");
  return 1;
}

int strict_global(lua_State* L) {
  const char* name = lua_tostring(L, 2);
  static const char* forbidden[] = {"os",   "io",     "debug",          "package",  "dofile",
                                    "load", "rawset", "collectgarbage", "loadfile", nullptr};
  for (const char** f = forbidden; *f; ++f)
    if (name && std::strcmp(name, *f) == 0)
      return luaL_error(L, "'%s' is not available in the hldlab sandbox", name);
  return luaL_error(L, "undefined global '%s'", name ? name : "?");
}

void count_hook(lua_State* L, lua_Debug*) {
  Runner& r = runner(L);
  if (stop_requested()) {  // raised again at every hook, so a pcall in the script cannot hold it
    r.result.stopped = stop_reason();
    luaL_error(L, "%s", stop_message().c_str());
  }
  r.instructions += kHookEvery;
  if (r.instructions > r.options.instruction_budget)
    luaL_error(L, "instruction budget of %I exceeded (an endless loop?)",
               static_cast<lua_Integer>(r.options.instruction_budget));
}

void* limited_alloc(void* ud, void* ptr, std::size_t old_size, std::size_t new_size) {
  Runner& r = *static_cast<Runner*>(ud);
  if (ptr == nullptr) old_size = 0;
  if (new_size == 0) {
    r.memory -= old_size;
    std::free(ptr);
    return nullptr;
  }
  if (new_size > old_size && r.memory + (new_size - old_size) > r.options.memory_limit)
    return nullptr;
  void* p = std::realloc(ptr, new_size);
  if (p != nullptr) r.memory = r.memory - old_size + new_size;
  return p;
}

const char* kStrictResults = R"lua(
local meta = ...
meta.__index = function(t, k)
  local known = {}
  for name in pairs(t) do if type(name) == "string" and name ~= "__id" then known[#known + 1] = name end end
  table.sort(known)
  error("results have no field '" .. tostring(k) .. "' (fields: " .. table.concat(known, ", ") .. ")", 2)
end
)lua";

/// A read-only view of `table` (at the top of the stack, replaced by the view): writes raise
/// `message`, and its metatable cannot be read or changed.
void make_read_only(lua_State* L, const char* message) {
  lua_newtable(L);  // the view
  lua_newtable(L);  // its metatable
  lua_pushvalue(L, -3);
  lua_setfield(L, -2, "__index");  // reads go to the table
  lua_pushstring(L, message);
  lua_pushcclosure(
      L,
      [](lua_State* L) -> int { return luaL_error(L, "%s", lua_tostring(L, lua_upvalueindex(1))); },
      1);
  lua_setfield(L, -2, "__newindex");
  lua_pushstring(L, "protected");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_remove(L, -2);
}

void protect_metatable(lua_State* L, const char* name) {
  luaL_getmetatable(L, name);
  lua_pushstring(L, "protected");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

// The script's global table is built from an allow-list: only these base functions and these
// libraries (math.random seeded by the experiment, string without dump). No os, io, debug,
// package, load, dofile, loadfile, collectgarbage, rawset (it would bypass read-only tables).
void open_sandbox(lua_State* L) {
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_MATHLIBNAME, luaopen_math},
                                  {LUA_UTF8LIBNAME, luaopen_utf8},
                                  {LUA_COLIBNAME, luaopen_coroutine},
                                  {nullptr, nullptr}};
  for (const luaL_Reg* lib = libs; lib->func; ++lib) {
    luaL_requiref(L, lib->name, lib->func, 0);  // not made global: the allow-list decides
    lua_pop(L, 1);
  }
  lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  const int loaded = lua_gettop(L);
  lua_newtable(L);  // the script's globals
  const int env = lua_gettop(L);
  lua_getfield(L, loaded, LUA_GNAME);
  for (const char* name :
       {"assert", "error", "getmetatable", "ipairs", "next", "pairs", "pcall", "rawequal", "rawget",
        "rawlen", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall", "_VERSION"}) {
    lua_getfield(L, -1, name);
    lua_setfield(L, env, name);
  }
  lua_pop(L, 1);
  for (const char* lib :
       {LUA_TABLIBNAME, LUA_STRLIBNAME, LUA_MATHLIBNAME, LUA_UTF8LIBNAME, LUA_COLIBNAME}) {
    lua_getfield(L, loaded, lib);
    lua_setfield(L, env, lib);
  }
  lua_getfield(L, env, "string");
  lua_pushnil(L);
  lua_setfield(L, -2, "dump");
  lua_pop(L, 1);
  lua_getfield(L, env, "math");
  lua_pushcfunction(L, sandbox_random);
  lua_setfield(L, -2, "random");
  lua_pushcfunction(L, sandbox_randomseed);
  lua_setfield(L, -2, "randomseed");
  lua_pop(L, 1);
  lua_pushcfunction(L, sandbox_print);
  lua_setfield(L, env, "print");
  lua_pushcfunction(L, sandbox_require);
  lua_setfield(L, env, "require");
  lua_pushvalue(L, env);
  lua_setfield(L, env, "_G");

  // The module, read-only: a script cannot replace lab.expect.
  static const luaL_Reg lab[] = {{"experiment", lab_experiment},
                                 {"report", lab_report},
                                 {"expect", lab_expect},
                                 {"check", lab_check},
                                 {"duration", lab_duration},
                                 {"lessons", lab_lessons},
                                 {"info", lab_info},
                                 {"fixed", lab_fixed},
                                 {"sweep", lab_sweep},
                                 {"mean_ci", lab_mean_ci},
                                 {"check_linearizable", lab_check_linearizable},
                                 {"steady_state", lab_steady_state},
                                 {"check_transactions", lab_check_transactions},
                                 {nullptr, nullptr}};
  luaL_newlib(L, lab);
  for (const char* kind : {"poisson", "constant", "closed", "trace", "uniform", "zipf", "hotspot",
                           "exponential", "lognormal", "pareto", "bimodal"}) {
    lua_pushstring(L, kind);
    lua_pushcclosure(L, lab_tagged, 1);
    lua_setfield(L, -2, kind);
  }
  make_read_only(L, "the hldlab module is read-only");
  lua_pushcfunction(L, sweep_at);
  lua_setfield(L, LUA_REGISTRYINDEX, "hldlab.sweep_at");
  lua_setfield(L, LUA_REGISTRYINDEX, "hldlab.module");

  static const luaL_Reg experiment_methods[] = {
      {"add", exp_add}, {"workload", exp_workload}, {"at", exp_at},
      {"run", exp_run}, {"systems", exp_systems},   {nullptr, nullptr}};
  luaL_newmetatable(L, kExperimentMeta);
  luaL_newlib(L, experiment_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, box_gc<ExperimentBox>);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, kSystemMeta);
  static const luaL_Reg system_methods[] = {{"inject", sys_inject}, {"clear", sys_clear},
                                            {"call", sys_call},     {"at", sys_at},
                                            {"trace", sys_trace},   {nullptr, nullptr}};
  luaL_newlib(L, system_methods);
  lua_pushcclosure(L, sys_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, box_gc<SystemBox>);
  lua_setfield(L, -2, "__gc");
  lua_pop(L, 1);
  luaL_newmetatable(L, kResultsMeta);
  luaL_loadstring(L, kStrictResults);
  lua_pushvalue(L, env);
  lua_setupvalue(L, -2, 1);  // its _ENV: the sandbox's globals
  lua_pushvalue(L, -2);
  lua_call(L, 1, 0);
  lua_pop(L, 1);
  for (const char* meta : {kExperimentMeta, kSystemMeta, kResultsMeta}) protect_metatable(L, meta);

  // Reading an undefined global is an error; the globals' metatable cannot be changed.
  lua_newtable(L);
  lua_pushcfunction(L, strict_global);
  lua_setfield(L, -2, "__index");
  lua_pushstring(L, "protected");
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, env);
  // The script's chunk gets `env` as its _ENV (see run_chunk).
  lua_setfield(L, LUA_REGISTRYINDEX, "hldlab.env");
  lua_pop(L, 1);  // loaded
}

ScriptResult run_chunk(const std::function<int(lua_State*)>& load, const PluginRegistry& registry,
                       const ScriptOptions& options) {
  Runner r{registry, options, {}, Rng(options.seed.value_or(1)), 0, 0, {}};
  r.load = &load;
  lua_State* L = lua_newstate(limited_alloc, &r);
  if (L == nullptr) {
    r.result.error = "cannot create a Lua state";
    return r.result;
  }
  *static_cast<Runner**>(lua_getextraspace(L)) = &r;
  lua_gc(L, LUA_GCGEN, 0, 0);
  open_sandbox(L);
  if (load(L) != LUA_OK) {
    r.result.error = lua_tostring(L, -1) ? lua_tostring(L, -1) : "cannot load the script";
  } else {
    lua_getfield(L, LUA_REGISTRYINDEX, "hldlab.env");
    lua_setupvalue(L, -2, 1);  // the chunk's _ENV
    lua_sethook(L, count_hook, LUA_MASKCOUNT, kHookEvery);
    r.result.error = protected_call(L, 0);
    if (r.worker_done) r.result.error.clear();  // a sweep worker stops after its runs
  }
  lua_close(L);
  return std::move(r.result);
}

}  // namespace

bool ScriptResult::failed_expectation() const {
  return std::any_of(expectations.begin(), expectations.end(),
                     [](const Expectation& e) { return !e.passed; });
}

bool ScriptResult::failed_system() const {
  for (const auto& e : experiments)
    for (const auto& s : e.systems)
      if (!s.error.empty()) return true;
  return false;
}

int ScriptResult::exit_code() const {
  if (stopped == StopReason::interrupted) return 130;
  if (!error.empty()) return 2;
  return failed_expectation() || failed_system() ? 1 : 0;
}

ScriptResult run_script(const std::string& path, const PluginRegistry& registry,
                        const ScriptOptions& options) {
  return run_chunk([&](lua_State* L) { return luaL_loadfilex(L, path.c_str(), "t"); }, registry,
                   options);
}

ScriptResult run_script_text(const std::string& text, const std::string& chunk_name,
                             const PluginRegistry& registry, const ScriptOptions& options) {
  const std::string name = "@" + chunk_name;
  return run_chunk(
      [&](lua_State* L) {
        return luaL_loadbufferx(L, text.data(), text.size(), name.c_str(), "t");
      },
      registry, options);
}

nlohmann::json to_json(const ScriptResult& r) {
  nlohmann::json out;
  out["experiments"] = nlohmann::json::array();
  for (const auto& e : r.experiments) out["experiments"].push_back(to_json(e));
  if (!r.sweeps.empty()) out["sweeps"] = to_json(r.sweeps);
  out["expectations"] = nlohmann::json::array();
  for (const auto& e : r.expectations)
    out["expectations"].push_back({{"message", e.message},
                                   {"where", e.where},
                                   {"passed", e.passed},
                                   {"claim", e.claim},
                                   {"headline", e.headline}});
  if (!r.error.empty()) out["error"] = r.error;
  if (r.stopped == StopReason::interrupted) out["interrupted"] = true;
  if (r.stopped == StopReason::timeout) out["timed_out"] = true;
  out["exit_code"] = r.exit_code();
  return out;
}

}  // namespace hldlab
