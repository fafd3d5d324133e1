// Integration with a real Prometheus server (the Debian `prometheus` package): start it on a
// free loopback port with a temporary configuration and storage, run a paced experiment that
// exposes its metrics, wait until it has been scraped, then evaluate every query of every
// Grafana dashboard (template variables substituted the way Grafana does) through Prometheus's
// HTTP API and check that each returns plausible data. Everything started is stopped by PID.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "hldlab_test.hpp"
#include "http_get.hpp"

namespace fs = std::filesystem;
using hldlab::testing::http_get;
using hldlab::testing::url_encode;
using nlohmann::json;

namespace {

double unix_now() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

/// A free loopback TCP port (bound then released: a tiny race we accept).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t length = sizeof a;
  REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &length) == 0);
  ::close(fd);
  return ntohs(a.sin_port);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// A temporary directory, removed with everything in it.
struct TempDir {
  fs::path path;
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "hldlab-prometheus-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

/// A child process whose output goes to a log file; stopped (TERM, then KILL) by its PID when
/// this object dies, so a failing check never leaves it running.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const fs::path& log) : log_(log) {
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    pid_ = ::fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(args[0], args.data());
      std::_Exit(127);
    }
  }
  ~Child() { stop(); }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  /// The exit status if the process has ended (reaping it), else nullopt.
  std::optional<int> poll() {
    if (exited_) return status_;
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      exited_ = true;
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return status_;
    }
    return std::nullopt;
  }
  /// Wait up to `seconds` for the process to end by itself.
  std::optional<int> wait(double seconds) {
    const double deadline = unix_now() + seconds;
    while (unix_now() < deadline) {
      if (auto s = poll()) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return poll();
  }
  void stop() {
    if (exited_ || pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    if (wait(5)) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    exited_ = true;
  }
  std::string log() const { return read_file(log_); }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  fs::path log_;
  bool exited_ = false;
  int status_ = 0;
};

/// Prometheus's HTTP API answer for `target`, which must be a success.
json api(int port, const std::string& target) {
  const auto r = http_get(port, target, 20);
  INFO("GET " << target << " -> " << r.status << " " << r.body.substr(0, 500));
  REQUIRE(r.status == 200);
  json j = json::parse(r.body);
  REQUIRE(j["status"] == "success");
  return j["data"];
}

std::string regex_escape(const std::string& s) {
  static const std::string special = R"(\^$.|?*+()[]{})";
  std::string out;
  for (char c : s) {
    if (special.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

/// Grafana's value of a multi-value variable with "All" selected, for a regex matcher.
std::string all_value(const std::vector<std::string>& values) {
  if (values.size() == 1) return regex_escape(values[0]);
  std::string out = "(";
  for (std::size_t i = 0; i < values.size(); ++i) out += (i ? "|" : "") + regex_escape(values[i]);
  return out + ")";
}

std::string substitute(std::string expr, const std::map<std::string, std::string>& vars) {
  // Longest names first, so that $variant is not replaced inside $variants.
  std::vector<std::pair<std::string, std::string>> sorted(vars.begin(), vars.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  for (const auto& [name, value] : sorted) {
    for (const std::string& form : {"${" + name + ":regex}", "${" + name + "}", "$" + name}) {
      for (auto at = expr.find(form); at != std::string::npos;
           at = expr.find(form, at + value.size()))
        expr.replace(at, form.size(), value);
    }
  }
  return expr;
}

struct Window {
  double start, end;
  std::string params() const {
    std::ostringstream s;
    s.precision(15);
    s << "&start=" << start << "&end=" << end << "&step=1";
    return s.str();
  }
};

/// Values of a range query: labels (without __name__ unless kept) -> time -> value.
using Series = std::map<std::string, std::map<double, double>>;

Series query_range(int port, const std::string& expr, const Window& w) {
  const json data = api(port, "/api/v1/query_range?query=" + url_encode(expr) + w.params());
  Series out;
  for (const auto& s : data["result"]) {
    std::string key;
    for (const auto& [k, v] : s["metric"].items()) key += k + "=" + v.get<std::string>() + ",";
    for (const auto& point : s["values"]) {
      const std::string text = point[1].get<std::string>();
      out[key][point[0].get<double>()] = text == "NaN" ? NAN : std::stod(text);
    }
  }
  return out;
}

std::size_t finite_points(const Series& s) {
  std::size_t n = 0;
  for (const auto& [k, points] : s)
    for (const auto& [t, v] : points) n += std::isfinite(v);
  return n;
}

/// label_values(SELECTOR, label) through the series API.
std::vector<std::string> label_values(int port, const std::string& query, const Window& w) {
  static const std::regex form(R"(^\s*label_values\((.*),\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$)");
  std::smatch m;
  INFO("variable query: " << query);
  REQUIRE(std::regex_match(query, m, form));
  std::ostringstream times;
  times.precision(15);
  times << "&start=" << w.start << "&end=" << w.end;
  const json data = api(port, "/api/v1/series?match[]=" + url_encode(m[1]) + times.str());
  std::set<std::string> values;
  for (const auto& s : data)
    if (s.contains(m[2].str())) values.insert(s[m[2].str()].get<std::string>());
  return {values.begin(), values.end()};
}

/// Every panel of a dashboard, including those nested in collapsed rows.
void collect_panels(const json& panels, std::vector<json>& out) {
  for (const auto& p : panels) {
    if (p.contains("panels")) collect_panels(p["panels"], out);
    if (p.contains("targets")) out.push_back(p);
  }
}

const std::string kSource = HLDLAB_SOURCE_DIR;
const fs::path kDashboards = fs::path(kSource) / "dashboards" / "grafana" / "dashboards";

/// The experiment: every variant of every built lesson plus the runtime's pass-through lesson
/// (it answers hit/miss), identical traffic, and the generic faults each accepts injected. The
/// first fault comes 4 s (wall) into the run, well after the first scrape, so that Prometheus
/// sees the fault counters change.
std::string experiment_script() {
  std::ostringstream s;
  s << "local lab = require \"hldlab\"\n"
       "local exp = lab.experiment{ name = \"prometheus integration\", seed = 1, duration = "
       "\"20s\" }\n"
       "exp:workload{ arrivals = lab.poisson{ rps = 200 }, keys = lab.zipf{ n = 1000, s = 1.0 },\n"
       "              service = lab.exponential{ mean = \"5ms\" }, writes = 0.1 }\n";
  // Which generic faults each lesson accepts (injecting another one is an error).
  s << "local applies = { passthrough = { errors = true, latency = true } }\n";
  for (const auto& name : hldlab::testing::registry().names()) {
    const auto& info = hldlab::testing::registry().get(name).lesson->info();
    s << "applies." << name << " = {";
    for (const auto& f : info.generic_faults) s << " " << f << " = true,";
    s << " }\n";
    for (const auto& v : info.variants)
      s << "exp:add{ lesson = \"" << name << "\", variant = \"" << v.name << "\", label = \""
        << name << ":" << v.name << "\" }\n";
  }
  s << "exp:add{ lesson = \"passthrough\", variant = \"instant\", label = \"passthrough:instant\" "
       "}\n"
       "local function when(fault, fn) return function(sys) if applies[sys.lesson][fault] then "
       "fn(sys) end end end\n"
       "exp:at(\"8s\", when(\"errors\", function(sys) sys:inject(\"errors\", { rate = 0.2 }) "
       "end))\n"
       "exp:at(\"11s\", when(\"errors\", function(sys) sys:clear(\"errors\") end))\n"
       "exp:at(\"13s\", when(\"latency\", function(sys) sys:inject(\"latency\", { delay = \"20ms\" "
       "}) end))\n"
       "exp:at(\"16s\", when(\"latency\", function(sys) sys:clear(\"latency\") end))\n"
       "lab.report(exp:run())\n";
  return s.str();
}

}  // namespace

TEST_CASE(
    "the Grafana provisioning, dashboards and docker-compose.yml refer to each other "
    "consistently") {
  const fs::path root = fs::path(kSource) / "dashboards";
  const std::string datasource = read_file(root / "grafana/provisioning/datasources/hldlab.yml");
  const std::string providers = read_file(root / "grafana/provisioning/dashboards/hldlab.yml");
  const std::string compose = read_file(root / "docker-compose.yml");
  const std::string prometheus = read_file(root / "prometheus.yml");
  REQUIRE_THAT(datasource, Catch::Contains("uid: hldlab-prometheus") &&
                               Catch::Contains("type: prometheus") &&
                               Catch::Contains("url: http://localhost:9090"));
  REQUIRE_THAT(providers, Catch::Contains("path: /var/lib/grafana/dashboards"));
  REQUIRE_THAT(compose, Catch::Contains("./grafana/dashboards:/var/lib/grafana/dashboards") &&
                            Catch::Contains("./grafana/provisioning:/etc/grafana/provisioning") &&
                            Catch::Contains("./prometheus.yml:/etc/prometheus/prometheus.yml") &&
                            Catch::Contains("127.0.0.1:9090"));
  REQUIRE_THAT(prometheus, Catch::Contains("127.0.0.1:9464"));
  std::size_t dashboards = 0;
  std::set<std::string> uids;
  for (const auto& entry : fs::directory_iterator(kDashboards)) {
    if (entry.path().extension() != ".json") continue;
    ++dashboards;
    INFO(entry.path());
    const json d = json::parse(read_file(entry.path()));
    REQUIRE(uids.insert(d["uid"].get<std::string>()).second);
    std::vector<json> panels;
    collect_panels(d["panels"], panels);
    REQUIRE_FALSE(panels.empty());
    for (const auto& p : panels)
      for (const auto& t : p["targets"]) CHECK(t["datasource"]["uid"] == "hldlab-prometheus");
    for (const auto& v : d["templating"]["list"])
      if (v["type"] == "query") CHECK(v["datasource"]["uid"] == "hldlab-prometheus");
  }
  CHECK(dashboards >= 2);
  CHECK(uids.count("hldlab-overview"));
}

TEST_CASE(
    "every built lesson is on one family dashboard, with a panel for each metric it declares") {
  std::map<std::string, std::string> family_of;  // lesson -> dashboard title
  std::map<std::string, std::string> exprs;      // dashboard title -> every panel query
  for (const auto& entry : fs::directory_iterator(kDashboards)) {
    if (entry.path().extension() != ".json") continue;
    const json d = json::parse(read_file(entry.path()));
    const std::string title = d["title"];
    std::vector<json> panels;
    collect_panels(d["panels"], panels);
    for (const auto& p : panels)
      for (const auto& t : p["targets"]) exprs[title] += t["expr"].get<std::string>() + "\n";
    for (const auto& v : d["templating"]["list"]) {
      if (v["name"] != "family_lessons") continue;
      const std::string lessons = v["query"];
      for (std::size_t from = 0; from <= lessons.size();) {
        const std::size_t bar = std::min(lessons.find('|', from), lessons.size());
        const std::string lesson = lessons.substr(from, bar - from);
        INFO(lesson << " is in " << title);
        CHECK(family_of.emplace(lesson, title).second);  // in one family only
        from = bar + 1;
      }
    }
  }
  const auto& registry = hldlab::testing::registry();
  REQUIRE_FALSE(registry.names().empty());
  for (const auto& name : registry.names()) {
    INFO("lesson " << name);
    REQUIRE(family_of.count(name));
    const std::string& queries = exprs[family_of[name]];
    for (const auto& m : registry.get(name).lesson->info().metrics) {
      const std::string metric = "hldlab_" + name + "_" + m.name +
                                 (m.kind == hldlab::MetricSpec::Kind::counter ? "_total" : "");
      INFO("metric " << metric);
      CHECK(std::regex_search(queries, std::regex("(^|[^a-z_])" + metric + "[{\\[ ]")));
    }
  }
}

TEST_CASE(
    "every query of every dashboard returns plausible data from a real Prometheus scraping a paced "
    "run") {
  const char* prometheus_binary = "/usr/bin/prometheus";
  if (::access(prometheus_binary, X_OK) != 0)
    FAIL("no " << prometheus_binary
               << ": install the Debian package `prometheus` (.ci/install-deps)");
  TempDir tmp;
  const int hldlab_port = free_port();
  const int prometheus_port = free_port();
  std::ofstream(tmp.path / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
         "scrape_configs:\n  - job_name: hldlab\n    scrape_interval: 1s\n    scrape_timeout: 1s\n"
         "    static_configs:\n      - targets: [\"127.0.0.1:"
      << hldlab_port << "\"]\n";
  Child prometheus(
      {prometheus_binary, "--config.file=" + (tmp.path / "prometheus.yml").string(),
       "--storage.tsdb.path=" + (tmp.path / "data").string(),
       "--web.listen-address=127.0.0.1:" + std::to_string(prometheus_port), "--log.level=warn"},
      tmp.path / "prometheus.log");
  // Ready when /-/ready answers 200; poll, never a fixed sleep.
  for (double deadline = unix_now() + 30;;) {
    if (http_get(prometheus_port, "/-/ready", 2).status == 200) break;
    INFO("prometheus log:\n" << prometheus.log());
    REQUIRE_FALSE(prometheus.poll().has_value());
    REQUIRE(unix_now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // Prometheus applies target changes every 5 s: wait until the hldlab target is in its scrape
  // pool (down for now), so that scrapes start within a second of the run and see it whole.
  for (double deadline = unix_now() + 30;;) {
    const json targets = api(prometheus_port, "/api/v1/targets?state=active");
    if (!targets["activeTargets"].empty()) break;
    REQUIRE(unix_now() < deadline);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  std::ofstream(tmp.path / "experiment.lua") << experiment_script();
  const double start = unix_now();
  Child run({HLDLAB_BINARY, "--plugins", HLDLAB_TEST_PLUGIN_DIR, "--plugins",
             HLDLAB_TEST_BAD_PLUGIN_DIR "/good", "run", (tmp.path / "experiment.lua").string(),
             "--pace", "2", "--metrics", "127.0.0.1:" + std::to_string(hldlab_port), "--hold", "3",
             "--json", (tmp.path / "results.json").string()},
            tmp.path / "hldlab.log");
  // While it runs: Prometheus's own linter accepts the exposition text.
  std::string exposition;
  for (double deadline = unix_now() + 20;
       exposition.find("hldlab_requests_total") == std::string::npos;) {
    INFO("hldlab output:\n" << run.log());
    REQUIRE(unix_now() < deadline);
    REQUIRE_FALSE(run.poll().has_value());  // hldlab ended before serving its metrics
    const auto r = http_get(hldlab_port, "/metrics", 5);
    if (r.status == 200)
      exposition = r.body;
    else
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::ofstream(tmp.path / "metrics.txt") << exposition;
  const std::string lint = "/usr/bin/promtool check metrics < '" +
                           (tmp.path / "metrics.txt").string() + "' > '" +
                           (tmp.path / "promtool.log").string() + "' 2>&1";
  {
    const int status = std::system(lint.c_str());
    INFO("promtool check metrics:\n" << read_file(tmp.path / "promtool.log"));
    CHECK(status == 0);
  }

  const auto exit_code = run.wait(60);
  INFO("hldlab output:\n" << run.log());
  REQUIRE(exit_code.has_value());
  REQUIRE(*exit_code == 0);
  const json results = json::parse(read_file(tmp.path / "results.json"));
  double requests = 0;
  for (const auto& s : results["experiments"][0]["systems"])
    requests += s["requests"].get<double>();
  REQUIRE(requests > 0);

  // Scraped: the last values Prometheus holds equal the run's final figures.
  const std::string arrived =
      "sum(max_over_time(hldlab_requests_arrived_total{experiment=\"prometheus "
      "integration\"}[5m]))";
  double scraped = -1;
  for (double deadline = unix_now() + 15; unix_now() < deadline;) {
    const json data = api(prometheus_port, "/api/v1/query?query=" + url_encode(arrived));
    if (!data["result"].empty())
      scraped = std::stod(data["result"][0]["value"][1].get<std::string>());
    if (scraped == requests) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  REQUIRE(scraped == requests);
  const Window window{std::floor(start), std::ceil(unix_now())};
  {  // Figures, not assertions: how long Prometheus's scrapes of hldlab took.
    for (const char* f : {"avg", "max"}) {
      const std::string q =
          std::string(f) + "_over_time(scrape_duration_seconds{job=\"hldlab\"}[5m])";
      const json data = api(prometheus_port, "/api/v1/query?query=" + url_encode(q));
      if (!data["result"].empty())
        std::cout << f << " scrape duration of hldlab ("
                  << results["experiments"][0]["systems"].size()
                  << " systems): " << data["result"][0]["value"][1].get<std::string>() << " s\n";
    }
  }

  std::set<std::string> built;
  for (const auto& name : hldlab::testing::registry().names()) built.insert(name);
  std::size_t dashboards = 0, queries = 0, exercised_dashboards = 0;
  for (const auto& entry : fs::directory_iterator(kDashboards)) {
    if (entry.path().extension() != ".json") continue;
    ++dashboards;
    const json d = json::parse(read_file(entry.path()));
    const std::string title = d["title"];
    INFO("dashboard: " << title);
    // Template variables, in order (later ones use earlier ones), "All" selected.
    std::map<std::string, std::string> vars = {{"__rate_interval", "4s"}, {"__interval", "1s"}};
    bool exercised = true;
    for (const auto& v : d["templating"]["list"]) {
      const std::string name = v["name"];
      if (v["type"] == "constant") {
        vars[name] = v["query"];
        if (name == "family_lessons") {  // a family dashboard: is any of its lessons built?
          const std::regex family(vars[name]);
          exercised = std::any_of(built.begin(), built.end(), [&](const std::string& l) {
            return std::regex_match(l, family);
          });
        }
        continue;
      }
      REQUIRE(v["type"] == "query");
      const json& q = v["query"];
      const std::string query =
          substitute(q.is_string() ? q.get<std::string>() : q["query"].get<std::string>(), vars);
      const auto values = label_values(prometheus_port, query, window);
      INFO("variable " << name << " = label_values from " << query);
      if (exercised) REQUIRE_FALSE(values.empty());
      vars[name] = values.empty() ? "()" : all_value(values);
    }
    if (!exercised)
      WARN(title << ": none of its lessons is built; its queries are only checked to be valid");
    exercised_dashboards += exercised;

    // Every panel query and the annotation queries.
    std::vector<std::pair<std::string, std::string>> checks;  // (unit, expr)
    std::vector<json> panels;
    collect_panels(d["panels"], panels);
    for (const auto& p : panels) {
      const std::string unit = p["fieldConfig"]["defaults"].value("unit", "short");
      for (const auto& t : p["targets"]) checks.emplace_back(unit, t["expr"].get<std::string>());
    }
    for (const auto& a : d["annotations"]["list"])
      if (a.contains("expr")) checks.emplace_back("annotation", a["expr"].get<std::string>());

    std::map<std::string, std::map<double, Series>> quantiles;  // inner expression -> q -> result
    static const std::regex quantile_form(R"(^histogram_quantile\(([0-9.]+),\s*(.*)\)$)");
    for (const auto& [unit, raw] : checks) {
      ++queries;
      const std::string expr = substitute(raw, vars);
      INFO("query (" << unit << "): " << expr);
      REQUIRE(expr.find('$') == std::string::npos);  // every variable was substituted
      const Series result = query_range(prometheus_port, expr, window);
      if (!exercised) continue;
      CHECK(finite_points(result) > 0);
      for (const auto& [labels, points] : result)
        for (const auto& [t, value] : points) {
          if (!std::isfinite(value)) continue;
          INFO(labels << " at " << t << " = " << value);
          CHECK(value >= 0);
          if (unit == "percentunit") CHECK(value <= 1);
          if (unit == "annotation") CHECK(value > 0);
          if (unit == "s") CHECK(value <= 300);  // the largest finite bucket
        }
      std::smatch m;
      if (std::regex_match(expr, m, quantile_form)) quantiles[m[2]][std::stod(m[1])] = result;
    }
    // Quantiles of the same histogram: P50 <= P99 <= P99.9 for each system at each time.
    for (const auto& [inner, by_q] : quantiles) {
      for (auto lower = by_q.begin(); lower != by_q.end(); ++lower) {
        for (auto upper = std::next(lower); upper != by_q.end(); ++upper) {
          std::size_t compared = 0;
          for (const auto& [labels, points] : lower->second) {
            if (!upper->second.count(labels)) continue;
            for (const auto& [t, value] : points) {
              const auto& other = upper->second.at(labels);
              if (!other.count(t) || !std::isfinite(value) || !std::isfinite(other.at(t))) continue;
              INFO(labels << " at " << t << ": q" << lower->first << " " << value << " vs q"
                          << upper->first << " " << other.at(t));
              CHECK(value <= other.at(t) * (1 + 1e-9));
              ++compared;
            }
          }
          if (exercised) CHECK(compared > 0);
        }
      }
    }
  }
  CHECK(dashboards >= 2);
  CHECK(exercised_dashboards >= 2);  // the overview and the family of the built lesson(s)
  CHECK(queries > 20);
  // Stopped by PID (the destructors do it too when a check above fails).
  prometheus.stop();
}
