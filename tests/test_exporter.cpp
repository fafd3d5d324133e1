// The Prometheus exporter: the exposition text parses, every metric follows the naming
// conventions, and the exported values agree with the experiment's own results.
#include <prometheus/text_serializer.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "hldlab/runtime/exporter.hpp"
#include "hldlab_test.hpp"
#include "integration/http_get.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Exposition {
  std::map<std::string, std::string> types, helps;  // by family name
  std::vector<Sample> samples;

  /// The value of the one sample named `name` whose labels include `match`; fails if not one.
  double value(const std::string& name, const std::map<std::string, std::string>& match) const {
    const Sample* found = nullptr;
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : match) all = all && s.labels.count(k) && s.labels.at(k) == v;
      if (!all) continue;
      if (found) FAIL("more than one sample " << name << " matches");
      found = &s;
    }
    if (!found) FAIL("no sample " << name << " matches");
    return found->value;
  }

  /// Whether any sample named `name` has labels including `match`.
  bool has(const std::string& name, const std::map<std::string, std::string>& match) const {
    for (const auto& s : samples) {
      if (s.name != name) continue;
      bool all = true;
      for (const auto& [k, v] : match) all = all && s.labels.count(k) && s.labels.at(k) == v;
      if (all) return true;
    }
    return false;
  }
};

double parse_value(const std::string& text) {
  if (text == "+Inf") return INFINITY;
  if (text == "-Inf") return -INFINITY;
  if (text == "NaN" || text == "Nan") return NAN;  // prometheus-cpp writes "Nan"
  std::size_t used = 0;
  const double v = std::stod(text, &used);
  if (used != text.size()) throw std::invalid_argument("bad value '" + text + "'");
  return v;
}

/// A strict parser of the Prometheus text format (version 0.0.4). Throws on any malformed line.
Exposition parse_exposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  static const std::regex name_re("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex label_re("[a-zA-Z_][a-zA-Z0-9_]*");
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::string where = "line " + std::to_string(number) + " '" + line + "'";
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, keyword, name;
      words >> hash >> keyword >> name;
      if (keyword != "HELP" && keyword != "TYPE") continue;
      if (!std::regex_match(name, name_re)) throw std::invalid_argument("bad name: " + where);
      std::string rest;
      std::getline(words >> std::ws, rest);
      if (keyword == "TYPE") {
        static const std::set<std::string> kinds = {"counter", "gauge", "histogram", "summary",
                                                    "untyped"};
        if (!kinds.count(rest)) throw std::invalid_argument("bad type: " + where);
        if (e.types.count(name)) throw std::invalid_argument("second TYPE: " + where);
        e.types[name] = rest;
      } else {
        e.helps[name] = rest;
      }
      continue;
    }
    Sample s;
    std::size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    if (!std::regex_match(s.name, name_re)) throw std::invalid_argument("bad name: " + where);
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        const auto eq = line.find('=', i);
        if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"')
          throw std::invalid_argument("bad label: " + where);
        const std::string label = line.substr(i, eq - i);
        if (!std::regex_match(label, label_re))
          throw std::invalid_argument("bad label name: " + where);
        std::string value;
        std::size_t j = eq + 2;
        for (; j < line.size() && line[j] != '"'; ++j) {
          if (line[j] == '\\') {
            if (++j >= line.size()) throw std::invalid_argument("bad escape: " + where);
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        if (j >= line.size()) throw std::invalid_argument("unterminated label value: " + where);
        if (!s.labels.emplace(label, value).second)
          throw std::invalid_argument("repeated label: " + where);
        i = j + 1;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size()) throw std::invalid_argument("unterminated labels: " + where);
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') throw std::invalid_argument("no value: " + where);
    std::istringstream rest(line.substr(i + 1));
    std::string value, timestamp, extra;
    rest >> value >> timestamp >> extra;
    if (!extra.empty()) throw std::invalid_argument("trailing text: " + where);
    s.value = parse_value(value);
    e.samples.push_back(std::move(s));
  }
  return e;
}

/// The family a sample belongs to (histograms: name_bucket, name_sum, name_count).
std::string family_of(const Exposition& e, const std::string& sample) {
  if (e.types.count(sample)) return sample;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    const std::string s = suffix;
    if (sample.size() > s.size() && sample.compare(sample.size() - s.size(), s.size(), s) == 0) {
      const std::string base = sample.substr(0, sample.size() - s.size());
      if (e.types.count(base) && (e.types.at(base) == "histogram" || e.types.at(base) == "summary"))
        return base;
    }
  }
  return "";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// An experiment with systems of two lessons: every outcome kind, lesson metrics, and faults.
std::shared_ptr<Experiment> mixed_experiment(const std::string& name = "exporter test") {
  auto e = std::make_shared<Experiment>(
      ExperimentConfig{.name = name, .seed = 7, .duration = seconds(4)});
  Workload w;
  w.arrivals.rps = 500;
  w.keys = KeyDistribution::uniform(1000);
  w.service = Distribution::exponential(static_cast<double>(milliseconds(2)));
  e->set_workload(w);
  e->add(test_plugins(), "passthrough", "instant");                         // hits and misses
  e->add(test_plugins(), "passthrough", "delayed", {}, "delayed \"1ms\"");  // a label to escape
  SystemSlot& lb = e->add(registry(), "load_balancing", "round_robin", {{"backends", 4}});
  e->at(seconds(1), [&lb] { lb.inject("errors", {{"rate", 0.3}}); });
  e->at(seconds(2), [&lb] { lb.clear("errors"); });
  e->at(seconds(3), [&lb] { lb.inject("kill_backend", {{"backend", 1}}); });
  return e;
}

/// Over HTTP, as Prometheus does.
Exposition scrape(const MetricsExporter& exporter) {
  const auto response = http_get(exporter.port(), "/metrics");
  REQUIRE(response.status == 200);
  return parse_exposition(response.body);
}

/// The same text without the HTTP server (whose shutdown takes civetweb up to 2 s).
Exposition scrape(const ExperimentCollector& collector) {
  return parse_exposition(prometheus::TextSerializer().Serialize(collector.Collect()));
}

}  // namespace

TEST_CASE("the exposition text parses and every metric follows the Prometheus naming conventions") {
  auto experiment = mixed_experiment();
  experiment->run();
  MetricsExporter exporter("127.0.0.1:0");
  exporter.collector().add(experiment);
  const Exposition e = scrape(exporter);
  REQUIRE(e.samples.size() > 100);

  const std::regex our_name("hldlab_[a-z][a-z0-9]*(_[a-z0-9]+)*");
  const std::set<std::string> common_labels = {"experiment", "lesson", "variant"};
  std::set<std::string> families_seen;
  for (const auto& s : e.samples) {
    const std::string family = family_of(e, s.name);
    INFO(s.name);
    REQUIRE_FALSE(family.empty());  // every sample belongs to a family with a TYPE
    REQUIRE(e.helps.count(family));
    families_seen.insert(family);
    REQUIRE(std::regex_match(family, our_name));
    const std::string& type = e.types.at(family);
    if (type == "counter") CHECK(ends_with(family, "_total"));
    if (type != "counter") CHECK_FALSE(ends_with(family, "_total"));
    if (type == "histogram") CHECK(ends_with(family, "_seconds"));
    CHECK((type == "counter" || type == "gauge" || type == "histogram" || type == "summary"));
    if (type == "summary") CHECK(family == "hldlab_request_duration_quantile_seconds");
    for (const char* unit : {"_milliseconds", "_microseconds", "_nanoseconds", "_ms", "_us", "_ns"})
      CHECK_FALSE(family.find(unit) != std::string::npos);
    // Labels: experiment, lesson, variant always (only experiment on the experiment's clock);
    // outcome / fault / le only where they belong.
    if (family == "hldlab_virtual_time_seconds")
      CHECK(s.labels == std::map<std::string, std::string>{{"experiment", "exporter test"}});
    else
      for (const auto& label : common_labels) CHECK(s.labels.count(label));
    for (const auto& [label, value] : s.labels) {
      if (common_labels.count(label)) continue;
      const bool allowed =
          (label == "outcome" && family == "hldlab_requests_total") ||
          (label == "fault" && family == "hldlab_faults_injected_total") ||
          (label == "le" && type == "histogram") || (label == "quantile" && type == "summary") ||
          (label == "window" && family == "hldlab_request_duration_quantile_seconds") ||
          (label == "shard" && family == "hldlab_passthrough_per_shard");
      CHECK(allowed);
    }
    CHECK(std::isfinite(s.value));
    CHECK(s.value >= 0);
  }
  for (const char* family :
       {"hldlab_request_duration_seconds", "hldlab_requests_total", "hldlab_requests_arrived_total",
        "hldlab_requests_in_flight", "hldlab_cache_hits_total", "hldlab_cache_misses_total",
        "hldlab_faults_injected_total", "hldlab_virtual_time_seconds",
        "hldlab_passthrough_things_total", "hldlab_passthrough_per_shard",
        "hldlab_load_balancing_backends_in_rotation",
        "hldlab_load_balancing_dead_backend_errors_total"})
    CHECK(families_seen.count(family));

  // Histograms: increasing bounds, cumulative counts never decrease, +Inf equals _count.
  for (const auto& system : experiment->systems()) {
    double previous_bound = -1, previous_count = 0;
    for (const auto& s : e.samples) {
      if (s.name != "hldlab_request_duration_seconds_bucket" ||
          s.labels.at("variant") != system->label())
        continue;
      const double bound = parse_value(s.labels.at("le"));
      CHECK(bound > previous_bound);
      CHECK(s.value >= previous_count);
      previous_bound = bound;
      previous_count = s.value;
    }
    CHECK(std::isinf(previous_bound));
    CHECK(previous_count ==
          e.value("hldlab_request_duration_seconds_count", {{"variant", system->label()}}));
  }
}

TEST_CASE("exported counters, gauges and histograms equal the experiment's own results") {
  auto experiment = mixed_experiment();
  const ExperimentResult r = experiment->run();
  ExperimentCollector collector;
  collector.add(experiment);
  const Exposition e = scrape(collector);
  for (const auto& s : r.systems) {
    INFO(s.label);
    const std::map<std::string, std::string> who = {{"experiment", "exporter test"},
                                                    {"variant", s.label}};
    auto with = [&who](const char* k, const char* v) {
      auto m = who;
      m[k] = v;
      return m;
    };
    double completed = 0;
    for (const char* o : {"ok", "hit", "miss", "rejected", "error", "timeout"})
      completed += e.value("hldlab_requests_total", with("outcome", o));
    CHECK(completed == static_cast<double>(s.completed));
    CHECK(e.value("hldlab_requests_arrived_total", who) == static_cast<double>(s.requests));
    CHECK(e.value("hldlab_request_duration_seconds_count", who) ==
          static_cast<double>(s.completed));
    CHECK(e.value("hldlab_requests_total", with("outcome", "error")) ==
          static_cast<double>(s.count(Outcome::error)));
    // Cache series exist only for systems that answer with hits or misses.
    const bool cache = s.count(Outcome::hit) + s.count(Outcome::miss) > 0;
    REQUIRE(e.has("hldlab_cache_hits_total", who) == cache);
    if (cache) {
      CHECK(e.value("hldlab_cache_hits_total", who) == static_cast<double>(s.count(Outcome::hit)));
      CHECK(e.value("hldlab_cache_misses_total", who) ==
            static_cast<double>(s.count(Outcome::miss)));
    }
    CHECK(e.value("hldlab_requests_in_flight", who) == 0);
    // The run's quantiles are the results table's (every request finished: none censored).
    auto run_quantile = with("window", "run");
    run_quantile["quantile"] = "0.99";
    CHECK(e.value("hldlab_request_duration_quantile_seconds", run_quantile) ==
          Approx(s.p99).epsilon(1e-9));
    CHECK(e.value("hldlab_request_duration_quantile_seconds_count", with("window", "run")) ==
          static_cast<double>(s.completed));
  }
  const std::map<std::string, std::string> lb = {{"variant", "round_robin"}};
  auto lb_fault = [&lb](const char* fault) {
    auto m = lb;
    m["fault"] = fault;
    return m;
  };
  CHECK(e.value("hldlab_faults_injected_total", lb_fault("errors")) == 1);
  CHECK(e.value("hldlab_faults_injected_total", lb_fault("kill_backend")) == 1);
  CHECK(e.value("hldlab_faults_injected_total", lb_fault("latency")) ==
        0);  // declared, never injected
  CHECK(e.value("hldlab_requests_total", {{"variant", "round_robin"}, {"outcome", "error"}}) > 100);
  CHECK(e.value("hldlab_load_balancing_backends_in_rotation", lb) == 4);
  CHECK(e.value("hldlab_cache_hits_total", {{"variant", "instant"}}) > 500);
  CHECK(e.value("hldlab_virtual_time_seconds", {{"experiment", "exporter test"}}) ==
        static_cast<double>(experiment->now()) / 1e9);
  CHECK(experiment->now() >= experiment->config().duration);
}

TEST_CASE("a fixed 1 ms latency is counted in the le=0.001 bucket and not in le=0.0005") {
  auto experiment =
      std::make_shared<Experiment>(ExperimentConfig{.name = "fixed", .duration = seconds(1)});
  Workload w;
  w.arrivals.kind = Arrivals::Kind::constant;
  w.arrivals.rps = 100;
  experiment->set_workload(w);
  experiment->add(test_plugins(), "passthrough", "delayed", {{"delay", "1ms"}});
  const ExperimentResult r = experiment->run();
  ExperimentCollector collector;
  collector.add(experiment);
  const Exposition e = scrape(collector);
  const double n = e.value("hldlab_request_duration_seconds_count", {});
  REQUIRE(n == static_cast<double>(r.systems[0].completed));
  REQUIRE(n >= 99);
  CHECK(e.value("hldlab_request_duration_seconds_bucket", {{"le", "0.001"}}) == n);
  CHECK(e.value("hldlab_request_duration_seconds_bucket", {{"le", "0.0005"}}) == 0);
  CHECK(e.value("hldlab_request_duration_seconds_sum", {}) == Approx(n * 0.001));
}

TEST_CASE("two experiments with the same name are exported under distinct experiment labels") {
  auto first = mixed_experiment("same");
  auto second = mixed_experiment("same");
  first->run();
  second->run();
  ExperimentCollector collector;
  collector.add(first);
  collector.add(second);
  const Exposition e = scrape(collector);
  CHECK(e.value("hldlab_requests_arrived_total", {{"experiment", "same"}, {"variant", "instant"}}) >
        0);
  CHECK(e.value("hldlab_requests_arrived_total",
                {{"experiment", "same #2"}, {"variant", "instant"}}) > 0);
}

TEST_CASE("scrapes taken while a paced experiment runs see counters that never decrease") {
  auto experiment = mixed_experiment("live");
  ExperimentCollector collector;
  collector.add(experiment);
  RunOptions paced;
  paced.pace = 10;  // 4 s of virtual time in about 0.4 s
  std::thread runner([&] { experiment->run(paced); });
  std::vector<double> arrived, clock;
  while (arrived.size() < 200 && (arrived.empty() || arrived.back() < 2000)) {
    const Exposition e = scrape(collector);
    arrived.push_back(e.value("hldlab_requests_arrived_total", {{"variant", "instant"}}));
    clock.push_back(e.value("hldlab_virtual_time_seconds", {{"experiment", "live"}}));
    const double count = e.value("hldlab_request_duration_seconds_count", {{"variant", "instant"}});
    const double le_inf =
        e.value("hldlab_request_duration_seconds_bucket", {{"variant", "instant"}, {"le", "+Inf"}});
    CHECK(le_inf == count);
  }
  runner.join();
  REQUIRE(arrived.size() >= 3);
  CHECK(std::is_sorted(arrived.begin(), arrived.end()));
  CHECK(arrived.front() < arrived.back());  // scraped while it ran, not only at the end
  CHECK(std::is_sorted(clock.begin(), clock.end()));
  CHECK(clock.front() < clock.back());  // the virtual clock moved between scrapes
}

TEST_CASE("binding a metrics port that is in use fails with a one-line reason") {
  MetricsExporter first("127.0.0.1:0");
  const std::string busy = "127.0.0.1:" + std::to_string(first.port());
  REQUIRE_THROWS_WITH(MetricsExporter(busy), Catch::Contains("cannot serve metrics on " + busy) &&
                                                 Catch::Contains("in use"));
  REQUIRE_THROWS_AS(MetricsExporter("127.0.0.1:99999"), std::invalid_argument);
  REQUIRE_THROWS_AS(MetricsExporter("example.org:80"), std::invalid_argument);

  const std::string script = std::string(HLDLAB_SOURCE_DIR) + "/tests/scripts/tiny.lua";
  std::string out;
  REQUIRE(run_cli("run " + script + " --metrics " + busy, out) == 3);
  CHECK_THAT(out, Catch::Contains("cannot serve metrics on " + busy));
  // One error line, nothing else from the failed bind (plugin warnings may precede it).
  std::istringstream lines(out);
  std::size_t errors = 0;
  for (std::string line; std::getline(lines, line);) errors += line.rfind("error:", 0) == 0;
  CHECK(errors == 1);
  CHECK_THAT(out, !Catch::Contains("== tiny"));  // and the script did not run
  REQUIRE(run_cli("run " + script + " --metrics nonsense", out) == 2);
  CHECK_THAT(out, Catch::Contains("bad metrics address"));
}

TEST_CASE("the endpoint answers only /metrics, and serves IPv6 where the machine has it") {
  MetricsExporter exporter("127.0.0.1:0");
  CHECK(http_get(exporter.port(), "/nothing").status == 404);
  CHECK(http_get(exporter.port(), "/metrics").status == 200);
  try {
    MetricsExporter v6("[::1]:0");
    CHECK(v6.url() == "http://[::1]:" + std::to_string(v6.port()) + "/metrics");
  } catch (const ExporterError& e) {
    CHECK_THAT(e.what(), Catch::Contains("cannot serve metrics on [::1]:0"));
  }
}

TEST_CASE("hldlab run --metrics with port 0 picks a free port and logs its URL") {
  const std::string script = std::string(HLDLAB_SOURCE_DIR) + "/tests/scripts/tiny.lua";
  std::string out;
  REQUIRE(run_cli("run " + script + " --metrics 127.0.0.1:0 --hold 0.1", out) == 0);
  std::smatch m;
  REQUIRE(std::regex_search(
      out, m, std::regex("serving metrics on http://127\\.0\\.0\\.1:([0-9]+)/metrics")));
  CHECK(std::stoi(m[1]) > 0);
  CHECK_THAT(out, Catch::Contains("== tiny"));
  REQUIRE(run_cli("run " + script + " --hold 1", out) == 2);  // --hold needs --metrics
}
