#include "hldlab/runtime/exporter.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>
#include <prometheus/metric_type.h>
#include <prometheus/text_serializer.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <sstream>

namespace hldlab {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr double kNanosPerSecond = 1e9;

/// Prometheus metric names allow [a-zA-Z0-9_:]; anything else in a lesson's name becomes '_'.
std::string metric_name_part(const std::string& s) {
  std::string out = s;
  for (char& c : out)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) c = '_';
  return out;
}

/// Builds the families of one scrape, keeping them in first-use order.
class Families {
 public:
  MetricFamily& get(const std::string& name, MetricType type, const std::string& help) {
    auto it = index_.find(name);
    if (it != index_.end()) return families_[it->second];
    index_.emplace(name, families_.size());
    MetricFamily& f = families_.emplace_back();
    f.name = name;
    f.help = help;
    f.type = type;
    return f;
  }
  /// A family `name` exists with another type than `type`.
  bool type_clash(const std::string& name, MetricType type) const {
    const auto it = index_.find(name);
    return it != index_.end() && families_[it->second].type != type;
  }
  std::vector<MetricFamily> take() { return std::move(families_); }

 private:
  std::map<std::string, std::size_t> index_;
  std::vector<MetricFamily> families_;
};

bool is_runtime_family(const std::string& name) {
  static const char* const names[] = {
      "hldlab_request_duration_seconds", "hldlab_request_duration_quantile_seconds",
      "hldlab_requests_total",           "hldlab_requests_arrived_total",
      "hldlab_requests_in_flight",       "hldlab_cache_hits_total",
      "hldlab_cache_misses_total",       "hldlab_faults_injected_total",
      "hldlab_virtual_time_seconds"};
  return std::any_of(std::begin(names), std::end(names), [&](const char* n) { return name == n; });
}

ClientMetric with_labels(const std::vector<ClientMetric::Label>& labels) {
  ClientMetric m;
  m.label = labels;
  return m;
}

void add_counter(Families& fams, const std::string& name, const std::string& help,
                 const std::vector<ClientMetric::Label>& labels, double value) {
  ClientMetric m = with_labels(labels);
  m.counter.value = value;
  fams.get(name, MetricType::Counter, help).metric.push_back(std::move(m));
}

void add_gauge(Families& fams, const std::string& name, const std::string& help,
               const std::vector<ClientMetric::Label>& labels, double value) {
  ClientMetric m = with_labels(labels);
  m.gauge.value = value;
  fams.get(name, MetricType::Gauge, help).metric.push_back(std::move(m));
}

/// The recorder's log-linear histogram as Prometheus buckets. A bucket counts every value of
/// the log-linear buckets up to and including the one holding its bound (so up to 0.8% above
/// it): simulated latencies are often exactly a round number (a fixed 1 ms service time), and
/// those must land in the `le="0.001"` bucket, not be split by interpolation.
ClientMetric histogram_metric(const Histogram& h, const std::vector<ClientMetric::Label>& labels) {
  static const std::vector<std::int64_t> bucket_ends = [] {
    std::vector<std::int64_t> ends;
    for (double bound : latency_buckets_seconds()) {
      const auto bound_ns = static_cast<std::int64_t>(std::llround(bound * kNanosPerSecond));
      const int index = Histogram::index_of(static_cast<std::uint64_t>(bound_ns));
      ends.push_back(static_cast<std::int64_t>(Histogram::bucket_high(index)) - 1);
    }
    return ends;
  }();
  ClientMetric m = with_labels(labels);
  const double sum = h.sum();
  const std::vector<double> counts = h.cumulative_counts(bucket_ends);  // one pass
  std::uint64_t previous = 0;
  for (std::size_t i = 0; i < counts.size(); ++i) {
    // The simulation keeps recording while we read: never let a bucket go below the previous.
    previous = std::max(previous, static_cast<std::uint64_t>(std::llround(counts[i])));
    m.histogram.bucket.push_back({previous, latency_buckets_seconds()[i]});
  }
  const auto count =
      std::max(previous, static_cast<std::uint64_t>(std::max<std::int64_t>(0, h.count())));
  m.histogram.bucket.push_back({count, std::numeric_limits<double>::infinity()});
  m.histogram.sample_count = count;
  m.histogram.sample_sum = sum / kNanosPerSecond;
  return m;
}

const char* outcome_label(Outcome o) {
  switch (o) {
    case Outcome::ok:
      return "ok";
    case Outcome::hit:
      return "hit";
    case Outcome::miss:
      return "miss";
    case Outcome::rejected:
      return "rejected";
    case Outcome::error:
      return "error";
    case Outcome::timeout:
      return "timeout";
  }
  return "unknown";
}

void collect_system(Families& fams, const std::string& experiment, const SystemSlot& slot) {
  const LessonInfo& info = slot.info();
  const Recorder& rec = slot.recorder();
  const std::vector<ClientMetric::Label> labels = {
      {"experiment", experiment}, {"lesson", info.name}, {"variant", slot.label()}};
  auto plus = [&labels](const char* name, const std::string& value) {
    auto l = labels;
    l.push_back({name, value});
    return l;
  };

  fams.get("hldlab_request_duration_seconds", MetricType::Histogram,
           "Latency of completed requests (arrival to completion), in virtual seconds")
      .metric.push_back(histogram_metric(rec.latency(), labels));
  // Exact quantiles as a summary: of the last closed timeline window (window=recent: what a live
  // dashboard shows) and of the whole run (window=run: what the results table shows).
  auto& summaries = fams.get("hldlab_request_duration_quantile_seconds", MetricType::Summary,
                             "Exact latency quantiles (the runtime's 0.8 % histogram) of the last "
                             "closed timeline window (window=recent) or of the whole run "
                             "(window=run), in virtual seconds");
  static const double quantiles[] = {0.5, 0.99, 0.999};
  for (const char* window : {"recent", "run"}) {
    const bool recent = window[1] == 'e';
    ClientMetric m = with_labels(plus("window", window));
    for (int i = 0; i < 3; ++i)
      m.summary.quantile.push_back(
          {quantiles[i],
           recent ? rec.recent_quantile(i)
                  : static_cast<double>(rec.latency().quantile(quantiles[i])) / kNanosPerSecond});
    m.summary.sample_count =
        static_cast<std::uint64_t>(recent ? rec.recent_count() : rec.latency().count());
    m.summary.sample_sum = recent ? rec.recent_sum() : rec.latency().sum() / kNanosPerSecond;
    summaries.metric.push_back(std::move(m));
  }
  for (int i = 0; i < kOutcomeCount; ++i) {
    const auto o = static_cast<Outcome>(i);
    add_counter(fams, "hldlab_requests_total", "Completed requests by outcome",
                plus("outcome", outcome_label(o)), static_cast<double>(rec.outcome(o)));
  }
  const std::int64_t arrived = rec.arrived();
  add_counter(fams, "hldlab_requests_arrived_total", "Requests handed to the system", labels,
              static_cast<double>(arrived));
  add_gauge(fams, "hldlab_requests_in_flight", "Requests arrived and not completed yet", labels,
            static_cast<double>(std::max<std::int64_t>(0, arrived - rec.completed())));
  if (rec.outcome(Outcome::hit) + rec.outcome(Outcome::miss) > 0) {  // only systems with a cache
    add_counter(fams, "hldlab_cache_hits_total", "Requests completed as a cache hit", labels,
                static_cast<double>(rec.outcome(Outcome::hit)));
    add_counter(fams, "hldlab_cache_misses_total", "Requests completed as a cache miss", labels,
                static_cast<double>(rec.outcome(Outcome::miss)));
  }
  // One counter per fault that can be injected into this variant, from 0: a fault's first
  // activation is then a change that rate() and changes() (the dashboards' annotations) see.
  for (const auto& f : rec.faults()) {
    const auto spec = std::find_if(info.faults.begin(), info.faults.end(),
                                   [&f](const FaultSpec& s) { return s.name == f.name; });
    if (spec != info.faults.end() && !spec->variants.empty() &&
        std::find(spec->variants.begin(), spec->variants.end(), slot.variant()) ==
            spec->variants.end())
      continue;
    add_counter(fams, "hldlab_faults_injected_total", "Fault activations (sys:inject)",
                plus("fault", f.name),
                static_cast<double>(f.count.load(std::memory_order_relaxed)));
  }

  const std::string prefix = "hldlab_" + metric_name_part(info.name) + "_";
  for (const auto& m : rec.metrics()) {
    const bool counter = m.spec.kind == MetricSpec::Kind::counter;
    const std::string name = prefix + metric_name_part(m.spec.name) + (counter ? "_total" : "");
    // A lesson metric that would clash with a runtime one (a lesson named "cache" declaring
    // "hits") or with another lesson's of another type is not exported: it would make the whole
    // scrape invalid.
    if (is_runtime_family(name) ||
        fams.type_clash(name, counter ? MetricType::Counter : MetricType::Gauge))
      continue;
    const std::string help =
        m.spec.help.empty() ? info.name + " metric " + m.spec.name : m.spec.help;
    const auto series = m.label_value.empty() ? labels : plus(m.spec.label.c_str(), m.label_value);
    if (counter) {
      add_counter(fams, name, help, series, m.value.value());
    } else {
      add_gauge(fams, name, help, series, m.value.value());
    }
  }
}

/// Splits "HOST:PORT" / "[V6]:PORT" / "PORT"; throws std::invalid_argument on bad syntax.
std::pair<std::string, int> parse_address(const std::string& address) {
  std::string host = "127.0.0.1", port = address;
  const auto colon = address.rfind(':');
  if (colon != std::string::npos) {
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
      host = host.substr(1, host.size() - 2);
    if (host == "localhost") host = "127.0.0.1";
  }
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits || std::stoi(port) > 65535 || host.empty())
    throw std::invalid_argument(
        "bad metrics address '" + address +
        "': expected HOST:PORT (e.g. 127.0.0.1:9464, port 0 picks a free one)");
  return {host, std::stoi(port)};
}

}  // namespace

const std::vector<double>& latency_buckets_seconds() {
  static const std::vector<double> buckets = [] {
    std::vector<double> b;
    for (double decade = 1e-6; decade < 1000; decade *= 10)
      for (double m : {1.0, 1.25, 1.6, 2.0, 2.5, 3.2, 4.0, 5.0, 6.3, 8.0}) {
        const double bound =
            std::stod(std::to_string(m) + "e" + std::to_string(std::lround(std::log10(decade))));
        if (bound <= 300) b.push_back(bound);  // exact decimal bounds: le="1.6e-05"
      }
    return b;
  }();
  return buckets;
}

void ExperimentCollector::add(std::shared_ptr<const Experiment> experiment) {
  std::lock_guard lock(mutex_);
  const std::string base = experiment->config().name;
  std::string name = base;
  for (int n = 2; std::any_of(entries_.begin(), entries_.end(),
                              [&](const Entry& e) { return e.name == name; });
       ++n)
    name = base + " #" + std::to_string(n);
  entries_.push_back({name, std::move(experiment)});
}

std::vector<MetricFamily> ExperimentCollector::Collect() const {
  std::vector<Entry> entries;
  {
    std::lock_guard lock(mutex_);
    entries = entries_;
  }
  Families fams;
  for (const Entry& e : entries) {
    add_gauge(fams, "hldlab_virtual_time_seconds",
              "The experiment's simulated clock (follows the wall clock times --pace)",
              {{"experiment", e.name}}, static_cast<double>(e.experiment->now()) / kNanosPerSecond);
    for (const auto& slot : e.experiment->systems()) collect_system(fams, e.name, *slot);
  }
  return fams.take();
}

MetricsExporter::MetricsExporter(const std::string& address)
    : collector_(std::make_shared<ExperimentCollector>()) {
  const auto [host, port] = parse_address(address);
  host_ = host;
  sockaddr_storage storage{};
  socklen_t length = 0;
  int family = AF_INET;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<std::uint16_t>(port));
    length = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    family = AF_INET6;
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<std::uint16_t>(port));
    length = sizeof(sockaddr_in6);
  } else {
    throw std::invalid_argument("bad metrics address '" + address + "': '" + host +
                                "' is not an IP address (use e.g. 127.0.0.1:9464)");
  }
  listener_ = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (listener_ < 0)
    throw ExporterError(std::string("cannot open a socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(listener_, reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      ::listen(listener_, 16) != 0) {
    const int err = errno;
    ::close(listener_);
    throw ExporterError(
        "cannot serve metrics on " + address + ": " + std::strerror(err) +
        (err == EADDRINUSE ? " (choose another port, or port 0 for a free one)" : ""));
  }
  socklen_t bound_length = sizeof storage;
  ::getsockname(listener_, reinterpret_cast<sockaddr*>(&storage), &bound_length);
  port_ = ntohs(family == AF_INET ? v4->sin_port : v6->sin6_port);
  if (::pipe2(wake_, O_CLOEXEC) != 0) {
    ::close(listener_);
    throw ExporterError(std::string("cannot create a pipe: ") + std::strerror(errno));
  }
  server_ = std::thread([this] { serve(); });
}

MetricsExporter::~MetricsExporter() {
  const char stop = 1;
  [[maybe_unused]] const auto n = ::write(wake_[1], &stop, 1);
  server_.join();
  ::close(listener_);
  ::close(wake_[0]);
  ::close(wake_[1]);
}

void MetricsExporter::serve() {
  for (;;) {
    pollfd fds[2] = {{listener_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    const int connection = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
    if (connection < 0) continue;
    answer(connection);
    ::close(connection);
  }
}

/// One HTTP/1.x exchange: GET /metrics gets the exposition, anything else a 404. A client
/// that sends nothing for two seconds is dropped.
void MetricsExporter::answer(int connection) {
  std::string request;
  char buffer[4096];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
    pollfd fd{connection, POLLIN, 0};
    if (::poll(&fd, 1, 2000) <= 0) return;
    const ssize_t n = ::recv(connection, buffer, sizeof buffer, 0);
    if (n <= 0) return;
    request.append(buffer, static_cast<std::size_t>(n));
  }
  std::string status = "200 OK", body;
  const bool metrics =
      request.rfind("GET /metrics ", 0) == 0 || request.rfind("GET /metrics?", 0) == 0;
  if (metrics) {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, collector_->Collect());
    body = out.str();
  } else {
    status = "404 Not Found";
    body = "hldlab serves its metrics at /metrics\n";
  }
  const std::string head = "HTTP/1.1 " + status +
                           "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"
                           "\r\nContent-Length: " +
                           std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  const std::string response = head + body;
  for (std::size_t sent = 0; sent < response.size();) {
    const ssize_t n =
        ::send(connection, response.data() + sent, response.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;
    sent += static_cast<std::size_t>(n);
  }
}

std::string MetricsExporter::url() const {
  const bool v6 = host_.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host_ + "]" : host_) + ":" + std::to_string(port_) + "/metrics";
}

}  // namespace hldlab
