#include "hldlab/runtime/report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "hldlab/runtime/results.hpp"

namespace hldlab {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::size_t kMaxPoints = 60;        // per line: longer timelines are decimated
constexpr std::size_t kMaxHoverColumns = 8;   // hover bands per chart
constexpr std::size_t kMaxMetricCharts = 8;   // lesson metrics charted per experiment
constexpr std::size_t kMaxArrows = 600;       // messages drawn per space-time diagram

std::string esc(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

/// A coordinate with at most one decimal.
std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  std::string s = buf;
  if (s.size() > 2 && s.compare(s.size() - 2, 2, ".0") == 0) s.resize(s.size() - 2);
  return s;
}

std::string fmt(double v, Unit unit) {
  if (!std::isfinite(v)) return "-";
  if (unit == Unit::count || unit == Unit::number) {
    char buf[32];
    if (std::abs(v) >= 1e6)
      std::snprintf(buf, sizeof buf, "%.3gM", v / 1e6);
    else if (std::abs(v) >= 1e4)
      std::snprintf(buf, sizeof buf, "%.3gk", v / 1e3);
    else
      std::snprintf(buf, sizeof buf, "%.4g", v);
    return buf;
  }
  return format_figure(Value(v), unit);
}

/// "90s" -> "1m30s" style time axis labels.
std::string fmt_time(double s) {
  char buf[32];
  if (s >= 3600 && std::fmod(s, 3600) == 0)
    std::snprintf(buf, sizeof buf, "%gh", s / 3600);
  else if (s >= 120 && std::fmod(s, 60) == 0)
    std::snprintf(buf, sizeof buf, "%gm", s / 60);
  else
    return format_seconds(s);
  return buf;
}

/// About `count` round tick values covering [lo, hi].
/// About `count` round times (1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1 h, ...) from 0.
std::vector<double> time_ticks(double hi, int count) {
  static const double steps[] = {0.001, 0.002, 0.005, 0.01,   0.02,   0.05,  0.1,  0.2,
                                 0.5,   1,     2,     5,      10,     15,    30,   60,
                                 120,   300,   600,   900,    1800,   3600,  7200, 14400,
                                 21600, 43200, 86400, 172800, 432000, 864000};
  double step = steps[std::size(steps) - 1];
  for (double s : steps)
    if (hi / s <= count) {
      step = s;
      break;
    }
  std::vector<double> out;
  for (double t = 0; t <= hi * (1 + 1e-9); t += step) out.push_back(t);
  return out;
}

std::vector<double> ticks(double lo, double hi, int count) {
  std::vector<double> out;
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / count;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (raw <= m * mag) {
      step = m * mag;
      break;
    }
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step)
    out.push_back(std::abs(t) < step * 1e-9 ? 0 : t);
  return out;
}

const char* kWarm[] = {"#d62728", "#ff7f0e", "#e377c2", "#b8860b", "#8c564b"};
const char* kCool[] = {"#1f77b4", "#17becf", "#2ca02c", "#9467bd",
                       "#4f6bd8", "#6b8e23", "#00a087", "#7f7fff"};

std::vector<std::string> colors(const ExperimentResult& e) {
  std::vector<std::string> out;
  std::size_t warm = 0, cool = 0;
  for (const auto& s : e.systems)
    out.push_back(s.naive ? kWarm[warm++ % std::size(kWarm)] : kCool[cool++ % std::size(kCool)]);
  return out;
}

struct Series {
  std::string name, color;
  std::vector<double> y;  // one per window; NaN: no value
};

struct Marker {
  double at;
  std::string label;
};

// Chart geometry (SVG user units; the SVG scales to its card).
constexpr double kW = 560, kH = 210, kLeft = 60, kRight = 14, kTop = 22, kBottom = 30;

/// A line chart over virtual time, one line per system.
struct LineChart {
  std::string title;
  Unit unit = Unit::number;
  bool peak = false;  // decimation keeps each bucket's maximum (else its mean)
  double window = 1;  // seconds per value
  double x_end = 0;   // seconds
  std::vector<Series> series;
  std::vector<Marker> markers;
  double y_max_fixed = kNaN;

  std::string render() const {
    std::size_t n = 0;
    double y_lo = 0, y_hi = 0;
    for (const auto& s : series) {
      n = std::max(n, s.y.size());
      for (double v : s.y)
        if (std::isfinite(v)) y_lo = std::min(y_lo, v), y_hi = std::max(y_hi, v);
    }
    if (std::isfinite(y_max_fixed)) y_hi = y_max_fixed;
    if (y_hi <= y_lo) y_hi = y_lo + 1;
    const auto ys = ticks(y_lo, y_hi, 4);
    y_hi = std::max(y_hi, ys.back());
    const double x_hi = std::max(x_end, window * static_cast<double>(n));
    auto X = [&](double t) { return kLeft + (kW - kLeft - kRight) * t / x_hi; };
    auto Y = [&](double v) {
      return kH - kBottom - (kH - kTop - kBottom) * (v - y_lo) / (y_hi - y_lo);
    };
    std::ostringstream o;
    o << "<svg class=\"chart line\" viewBox=\"0 0 " << kW << " " << kH
      << "\" role=\"img\" aria-label=\"" << esc(title) << "\">";
    o << "<g class=\"grid\">";
    for (double t : ys)
      o << "<line x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\"" << num(Y(t))
        << "\" y2=\"" << num(Y(t)) << "\"/>";
    o << "</g><g class=\"ylab\">";
    for (double t : ys)
      o << "<text x=\"" << kLeft - 5 << "\" y=\"" << num(Y(t) + 4) << "\">" << esc(fmt(t, unit))
        << "</text>";
    o << "</g><g class=\"xlab\">";
    for (double t : time_ticks(x_hi, 6))
      o << "<text x=\"" << num(X(t)) << "\" y=\"" << kH - kBottom + 15 << "\">" << esc(fmt_time(t))
        << "</text>";
    o << "<text class=\"axis-title\" x=\"" << kW - kRight << "\" y=\"" << kH - 2
      << "\">virtual time</text></g>";
    o << "<line class=\"axis\" x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\""
      << num(Y(y_lo)) << "\" y2=\"" << num(Y(y_lo)) << "\"/>";
    // Fault injections: dashed verticals, labels staggered on three rows; with many, only the
    // first of each name gets a label (every one has a tooltip).
    int row = 0;
    double last_x = -1e9;
    std::set<std::string> labelled;
    std::map<std::string, int> per_name;
    for (const auto& m : markers) ++per_name[m.label];
    for (const auto& m : markers) {
      const double x = X(m.at);
      const bool label = markers.size() <= 4 || labelled.insert(m.label).second;
      o << "<g class=\"fault\"><title>" << esc(fmt_time(m.at) + ": " + m.label)
        << "</title><line x1=\"" << num(x) << "\" x2=\"" << num(x) << "\" y1=\"" << kTop - 2
        << "\" y2=\"" << kH - kBottom << "\"/>";
      if (label) {
        row = x - last_x < 70 ? (row + 1) % 3 : 0;
        last_x = x;
        o << "<text x=\"" << num(x + 3) << "\" y=\"" << kTop + 8 + 11 * row << "\">"
          << esc(m.label.size() > 24 ? m.label.substr(0, 23) + "…" : m.label)
          << (markers.size() > 4 && per_name[m.label] > 1
                  ? " (×" + std::to_string(per_name[m.label]) + ")"
                  : "")
          << "</text>";
      }
      o << "</g>";
    }
    // Lines, decimated to kMaxPoints per series.
    const std::size_t bucket = std::max<std::size_t>(1, (n + kMaxPoints - 1) / kMaxPoints);
    for (const auto& s : series) {
      std::vector<std::string> segments(1);
      for (std::size_t i = 0; i < s.y.size(); i += bucket) {
        double acc = peak ? -std::numeric_limits<double>::infinity() : 0;
        int k = 0;
        for (std::size_t j = i; j < std::min(s.y.size(), i + bucket); ++j)
          if (std::isfinite(s.y[j])) acc = peak ? std::max(acc, s.y[j]) : acc + s.y[j], ++k;
        if (k == 0) {
          if (!segments.back().empty()) segments.emplace_back();
          continue;
        }
        const double v = peak ? acc : acc / k;
        const double t = window * (static_cast<double>(i) +
                                   static_cast<double>(std::min(bucket, s.y.size() - i)) / 2);
        segments.back() += num(X(t)) + "," + num(Y(v)) + " ";
      }
      o << "<g class=\"data\" stroke=\"" << s.color << "\"><title>" << esc(s.name) << "</title>";
      for (auto& seg : segments) {
        if (seg.empty()) continue;
        seg.pop_back();
        if (seg.find(' ') == std::string::npos) {  // a single point: a dot
          const auto comma = seg.find(',');
          o << "<circle r=\"2\" fill=\"" << s.color << "\" cx=\"" << seg.substr(0, comma)
            << "\" cy=\"" << seg.substr(comma + 1) << "\"/>";
        } else {
          o << "<polyline points=\"" << seg << "\"/>";
        }
      }
      o << "</g>";
    }
    // Hover bands: each shows every system's value over its span.
    const std::size_t columns = std::min(n, kMaxHoverColumns);
    for (std::size_t c = 0; c < columns; ++c) {
      const std::size_t a = n * c / columns, b = n * (c + 1) / columns;
      std::string tip = fmt_time(window * a) + " – " + fmt_time(window * b);
      for (const auto& s : series) {
        double acc = peak ? -std::numeric_limits<double>::infinity() : 0;
        int k = 0;
        for (std::size_t j = a; j < std::min(b, s.y.size()); ++j)
          if (std::isfinite(s.y[j])) acc = peak ? std::max(acc, s.y[j]) : acc + s.y[j], ++k;
        tip += "\n" + s.name + ": " + (k ? fmt(peak ? acc : acc / k, unit) : "-");
      }
      o << "<rect class=\"hover\" x=\"" << num(X(window * a)) << "\" y=\"" << kTop << "\" width=\""
        << num(X(window * b) - X(window * a)) << "\" height=\"" << kH - kTop - kBottom
        << "\"><title>" << esc(tip) << "</title></rect>";
    }
    o << "</svg>";
    return o.str();
  }
};

std::string card(const std::string& title, const std::string& note, const std::string& body) {
  std::string out = "<div class=\"card\"><h4>" + esc(title);
  if (!note.empty()) out += " <span class=\"note\">" + esc(note) + "</span>";
  return out + "</h4>" + body + "</div>";
}

std::string line_card(const LineChart& c, const std::string& note) {
  return card(c.title, note, c.render());
}

/// Latency CDF, log x; y stretched on the tail: -log10(1 - F), so 50/90/99/99.9 % are evenly
/// spaced.
std::string cdf_chart(const ExperimentResult& e, const std::vector<std::string>& color) {
  double lo = std::numeric_limits<double>::infinity(), hi = 0;
  for (const auto& s : e.systems)
    for (const auto& [x, f] : s.latency_cdf)
      if (x > 0) lo = std::min(lo, x), hi = std::max(hi, x);
  if (!(hi > 0)) return "";
  const double l0 = std::floor(std::log10(lo)), l1 = std::max(l0 + 1, std::ceil(std::log10(hi)));
  constexpr double kTail = 4;  // 99.99 %
  auto X = [&](double x) {
    return kLeft + (kW - kLeft - kRight) * (std::log10(std::max(x, lo)) - l0) / (l1 - l0);
  };
  auto Y = [&](double f) {
    const double t = f >= 1 ? kTail : std::min(kTail, -std::log10(1 - f));
    return kH - kBottom - (kH - kTop - kBottom) * t / kTail;
  };
  std::ostringstream o;
  o << "<svg class=\"chart cdf\" viewBox=\"0 0 " << kW << " " << kH
    << "\" role=\"img\" aria-label=\"latency CDF\"><g class=\"grid\">";
  const std::pair<double, const char*> levels[] = {
      {0, "0%"}, {0.5, "50%"}, {0.9, "90%"}, {0.99, "99%"}, {0.999, "99.9%"}, {0.9999, "99.99%"}};
  for (const auto& [f, _] : levels)
    o << "<line x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\"" << num(Y(f))
      << "\" y2=\"" << num(Y(f)) << "\"/>";
  for (double d = l0; d <= l1; ++d)
    o << "<line x1=\"" << num(X(std::pow(10, d))) << "\" x2=\"" << num(X(std::pow(10, d)))
      << "\" y1=\"" << kTop << "\" y2=\"" << kH - kBottom << "\"/>";
  o << "</g><g class=\"ylab\">";
  for (const auto& [f, name] : levels)
    o << "<text x=\"" << kLeft - 5 << "\" y=\"" << num(Y(f) + 4) << "\">" << name << "</text>";
  o << "</g><g class=\"xlab\">";
  for (double d = l0; d <= l1; ++d)
    o << "<text x=\"" << num(X(std::pow(10, d))) << "\" y=\"" << kH - kBottom + 15 << "\">"
      << format_seconds(std::pow(10, d)) << "</text>";
  o << "<text class=\"axis-title\" x=\"" << kW - kRight << "\" y=\"" << kH - 2
    << "\">latency (log scale)</text></g>";
  for (std::size_t i = 0; i < e.systems.size(); ++i) {
    const auto& s = e.systems[i];
    if (s.latency_cdf.empty()) continue;
    std::string points = num(X(s.latency_cdf.front().first)) + "," + num(Y(0)) + " ";
    for (const auto& [x, f] : s.latency_cdf) points += num(X(x)) + "," + num(Y(f)) + " ";
    points.pop_back();
    o << "<g class=\"data\" stroke=\"" << color[i] << "\"><title>" << esc(s.label) << ": P50 "
      << format_seconds(s.p50) << ", P99 " << format_seconds(s.p99) << ", P99.9 "
      << format_seconds(s.p999) << ", max " << format_seconds(s.max)
      << "</title><polyline points=\"" << points << "\"/></g>";
  }
  o << "</svg>";
  return card("Latency CDF", "fraction of requests at or below; tail stretched", o.str());
}

/// Horizontal bars of one figure, one per system.
std::string figure_bars(const std::string& name, const ExperimentResult& e,
                        const std::vector<std::string>& color) {
  Unit unit = Unit::number;
  double top = 0;
  std::vector<std::pair<std::size_t, double>> rows;
  for (std::size_t i = 0; i < e.systems.size(); ++i) {
    const auto& s = e.systems[i];
    const auto f = s.figures.find(name);
    if (f == s.figures.end() || !f->second.is_number()) continue;
    const auto u = s.figure_units.find(name);
    if (u != s.figure_units.end()) unit = u->second;
    rows.emplace_back(i, f->second.as_double());
    if (std::isfinite(rows.back().second)) top = std::max(top, std::abs(rows.back().second));
  }
  if (rows.empty()) return "";
  constexpr double kRow = 18, kLabel = 150, kValue = 80;
  const double h = kRow * static_cast<double>(rows.size()) + 6;
  std::ostringstream o;
  o << "<svg class=\"chart bars\" viewBox=\"0 0 " << kW << " " << num(h) << "\" role=\"img\">";
  double y = 3;
  for (const auto& [i, v] : rows) {
    const auto& s = e.systems[i];
    const double w = top > 0 && std::isfinite(v) ? (kW - kLabel - kValue) * std::abs(v) / top : 0;
    const std::string value = fmt(v, unit);
    o << "<g class=\"data\"><title>" << esc(s.label + ": " + value)
      << "</title><text class=\"name\" x=\"" << kLabel - 6 << "\" y=\"" << num(y + 12) << "\">"
      << esc(s.label) << "</text><rect x=\"" << kLabel << "\" y=\"" << num(y + 2) << "\" width=\""
      << num(std::max(w, 1.0)) << "\" height=\"" << kRow - 5 << "\" fill=\"" << color[i]
      << "\"/><text class=\"value\" x=\"" << num(kLabel + std::max(w, 1.0) + 5) << "\" y=\""
      << num(y + 12) << "\">" << esc(value) << "</text></g>";
    y += kRow;
  }
  o << "</svg>";
  return card(name, unit_name(unit), o.str());
}

/// Seconds with up to six significant digits ("10.015s"): the traced windows are short.
std::string precise_seconds(double s) {
  if (s < 1) return format_seconds(s);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6gs", s);
  return buf;
}

/// The space-time (Lamport) diagram of one traced system: a vertical line per node, time going
/// down, an arrow per message and a dot per node event.
std::string space_time(const SystemResult& s, const std::string& color) {
  int nodes = 0;
  for (const auto& m : s.messages) nodes = std::max({nodes, m.from + 1, m.to + 1});
  for (const auto& ev : s.node_events) nodes = std::max(nodes, ev.node + 1);
  if (nodes == 0) return "";
  nodes = std::min(nodes, 32);
  const double t0 = s.trace_from, t1 = s.trace_to > t0 ? s.trace_to : t0 + 1;
  // Time goes down, 30 % proportional and 70 % by the order of what happened, so that a
  // message always slopes and a burst of them spreads out (as in a Lamport diagram).
  std::vector<double> times;
  for (const auto& m : s.messages)
    times.push_back(to_seconds(m.sent)), times.push_back(to_seconds(m.received));
  for (const auto& ev : s.node_events) times.push_back(to_seconds(ev.at));
  std::sort(times.begin(), times.end());
  times.erase(std::unique(times.begin(), times.end()), times.end());
  const double gap = std::clamp(800.0 / nodes, 40.0, 140.0);
  const double w = 70 + gap * nodes, top = 30, bottom = 12;
  const double h = std::clamp(200.0 + 5 * static_cast<double>(times.size()), 360.0, 1100.0);
  auto X = [&](int node) { return 60 + gap * (node + 0.5); };
  auto Y = [&](double t) {
    const auto rank =
        static_cast<double>(std::lower_bound(times.begin(), times.end(), t) - times.begin());
    const double order = times.size() > 1 ? rank / static_cast<double>(times.size() - 1) : 0;
    const double linear = std::clamp((t - t0) / (t1 - t0), 0.0, 1.0);
    return top + (h - top - bottom) * (0.3 * linear + 0.7 * std::min(order, 1.0));
  };
  std::ostringstream o;
  o << "<svg class=\"chart messages\" viewBox=\"0 0 " << num(w) << " " << h
    << "\" style=\"max-width:" << num(w) << "px\" role=\"img\">";
  o << "<defs><marker id=\"arrow-" << esc(s.label)
    << "\" viewBox=\"0 0 8 8\" refX=\"7\" refY=\"4\" "
    << "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\"><path d=\"M0,0 L8,4 "
    << "L0,8 z\" fill=\"" << color << "\"/></marker></defs><g class=\"grid\">";
  for (int n = 0; n < nodes; ++n)
    o << "<line x1=\"" << num(X(n)) << "\" x2=\"" << num(X(n)) << "\" y1=\"" << top << "\" y2=\""
      << h - bottom << "\"/>";
  o << "</g><g class=\"xlab\">";
  for (int n = 0; n < nodes; ++n)
    o << "<text x=\"" << num(X(n)) << "\" y=\"" << top - 10 << "\">n" << n << "</text>";
  o << "</g><g class=\"ylab\">";
  double last_y = -100;
  for (double t : ticks(t0, t1, 16)) {
    if (Y(t) - last_y < 16) continue;
    last_y = Y(t);
    o << "<text x=\"52\" y=\"" << num(Y(t) + 4) << "\">" << esc(precise_seconds(t)) << "</text>";
  }
  o << "</g><g class=\"data msg\" stroke=\"" << color << "\">";
  std::size_t drawn = 0;
  for (const auto& m : s.messages) {
    if (m.from >= nodes || m.to >= nodes || drawn++ >= kMaxArrows) continue;
    const double ts = to_seconds(m.sent), tr = to_seconds(m.received);
    // A message that never arrived (its label says "lost" or "dropped") stops a third of the
    // way, dashed, at an ×.
    const bool lost =
        m.label.find("lost") != std::string::npos || m.label.find("dropped") != std::string::npos;
    const double x2 = lost ? X(m.from) + 0.35 * (X(m.to) - X(m.from)) : X(m.to);
    o << "<line x1=\"" << num(X(m.from)) << "\" y1=\"" << num(Y(ts)) << "\" x2=\"" << num(x2)
      << "\" y2=\"" << num(Y(tr)) << "\""
      << (lost ? " class=\"lost\"" : " marker-end=\"url(#arrow-" + esc(s.label) + ")\"")
      << "><title>n" << m.from << " → n" << m.to << " " << esc(m.label) << " ("
      << esc(precise_seconds(ts)) << " → " << esc(precise_seconds(tr)) << ")</title></line>";
    if (lost)
      o << "<text class=\"lost\" x=\"" << num(x2) << "\" y=\"" << num(Y(tr) + 4) << "\">×</text>";
  }
  o << "</g><g class=\"data events\">";
  for (const auto& ev : s.node_events) {
    if (ev.node >= nodes) continue;
    const double t = to_seconds(ev.at);
    o << "<g><title>"
      << "n" << ev.node << " " << esc(precise_seconds(t)) << ": " << esc(ev.label)
      << "</title><circle cx=\"" << num(X(ev.node)) << "\" cy=\"" << num(Y(t))
      << "\" r=\"4\"/><text x=\"" << num(X(ev.node) + 6) << "\" y=\"" << num(Y(t) + 4) << "\">"
      << esc(ev.label.size() > 18 ? ev.label.substr(0, 17) + "…" : ev.label) << "</text></g>";
  }
  o << "</g></svg>";
  std::string note =
      std::to_string(s.messages.size()) + " messages, " + std::to_string(s.node_events.size()) +
      (s.node_events.size() == 1 ? " event, " : " events, ") + precise_seconds(t0) + " – " +
      precise_seconds(t1) + "; time goes down (spread where busy); hover an arrow for its message";
  if (s.messages.size() > kMaxArrows)
    note += "; the first " + std::to_string(kMaxArrows) + " drawn";
  return "<div class=\"card wide\"><h4>Messages of " + esc(s.label) + " <span class=\"note\">" +
         esc(note) + "</span></h4>" + o.str() + "</div>";
}

double per_window(std::int64_t n, double window) {
  return static_cast<double>(n) / window;
}

/// Every chart of one experiment.
std::string experiment_html(const ExperimentResult& e, const std::string& anchor) {
  const auto color = colors(e);
  std::ostringstream o;
  o << "<section class=\"experiment\" id=\"" << esc(anchor) << "\"><h3>" << esc(e.name)
    << (e.interrupted ? " <span class=\"bad\">INTERRUPTED</span>" : "")
    << "</h3><p class=\"meta\">seed " << e.seed << " · " << esc(fmt_time(e.duration))
    << " of traffic" << (e.warmup > 0 ? " (warm-up " + esc(fmt_time(e.warmup)) + ")" : "") << " · "
    << esc(e.workload) << "</p><ul class=\"legend\">";
  for (std::size_t i = 0; i < e.systems.size(); ++i)
    o << "<li><span class=\"swatch\" style=\"background:" << color[i] << "\"></span>"
      << esc(e.systems[i].label) << " <span class=\"note\">"
      << (e.systems[i].naive ? "naive" : "fix") << "</span>"
      << (e.systems[i].error.empty() ? "" : " <span class=\"bad\">failed</span>") << "</li>";
  o << "</ul>";
  for (const auto& s : e.systems)
    if (!s.error.empty()) o << "<p class=\"bad\">" << esc(s.error) << "</p>";

  // Fault markers: every (time, fault) once, with the systems it hit when not all.
  std::map<std::pair<double, std::string>, int> hits;
  for (const auto& s : e.systems)
    for (const auto& f : s.fault_marks) ++hits[{to_seconds(f.at), f.fault}];
  std::vector<Marker> markers;
  for (const auto& [key, count] : hits) markers.push_back({key.first, key.second});

  double window = 1, x_end = e.duration;
  for (const auto& s : e.systems)
    if (s.timeline_window > 0) window = s.timeline_window, x_end = std::max(x_end, s.end);
  auto chart = [&](const std::string& title, Unit unit, bool peak, auto value) {
    LineChart c;
    c.title = title, c.unit = unit, c.peak = peak, c.window = window, c.x_end = x_end;
    c.markers = markers;
    for (std::size_t i = 0; i < e.systems.size(); ++i) {
      Series s{e.systems[i].label, color[i], {}};
      for (std::size_t w = 0; w < e.systems[i].timeline.size(); ++w)
        s.y.push_back(value(e.systems[i], w));
      c.series.push_back(std::move(s));
    }
    return c;
  };
  auto all_zero = [](const LineChart& c) {
    for (const auto& s : c.series)
      for (double v : s.y)
        if (std::isfinite(v) && v != 0) return false;
    return true;
  };
  using O = Outcome;
  o << "<div class=\"charts\">";
  o << line_card(chart("Throughput", Unit::per_second, false,
                       [&](const SystemResult& s, std::size_t w) {
                         const auto& n = s.timeline[w].outcomes;
                         return per_window(n[int(O::ok)] + n[int(O::hit)] + n[int(O::miss)],
                                           window);
                       }),
                 "answers per second");
  o << line_card(chart("P99 latency", Unit::seconds, true,
                       [&](const SystemResult& s, std::size_t w) {
                         const auto& win = s.timeline[w];
                         std::int64_t done = 0;
                         for (auto n : win.outcomes) done += n;
                         return done ? win.p99 : kNaN;
                       }),
                 "of each window's completions");
  const auto failures = chart(
      "Errors, rejections, timeouts", Unit::per_second, false,
      [&](const SystemResult& s, std::size_t w) {
        const auto& n = s.timeline[w].outcomes;
        return per_window(n[int(O::rejected)] + n[int(O::error)] + n[int(O::timeout)], window);
      });
  if (!all_zero(failures)) o << line_card(failures, "per second");
  o << line_card(chart("In flight", Unit::count, true,
                       [&](const SystemResult& s, std::size_t w) {
                         return static_cast<double>(s.timeline[w].in_flight);
                       }),
                 "requests at each window's end");
  bool cache = false;
  for (const auto& s : e.systems) cache |= s.hit_ratio >= 0;
  if (cache) {
    auto c = chart("Hit ratio", Unit::fraction, false, [&](const SystemResult& s, std::size_t w) {
      const auto& n = s.timeline[w].outcomes;
      const auto lookups = n[int(O::hit)] + n[int(O::miss)];
      return lookups ? static_cast<double>(n[int(O::hit)]) / static_cast<double>(lookups) : kNaN;
    });
    c.y_max_fixed = 1;
    o << line_card(c, "hits / (hits + misses)");
  }
  // Lesson metrics: one chart per metric that moves, in first-seen order.
  std::vector<std::string> names;
  for (const auto& s : e.systems)
    for (const auto& [name, values] : s.timeline_metrics)
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  std::size_t shown = 0, skipped = 0;
  for (const auto& name : names) {
    auto c = chart(name, Unit::number, false, [&](const SystemResult& s, std::size_t w) {
      for (const auto& [n, values] : s.timeline_metrics)
        if (n == name) return w < values.size() ? values[w] : kNaN;
      return kNaN;
    });
    std::erase_if(c.series, [&](const Series& s) {
      return std::none_of(s.y.begin(), s.y.end(), [](double v) { return std::isfinite(v); });
    });
    if (c.series.empty() || all_zero(c)) continue;
    if (shown++ >= kMaxMetricCharts) {
      ++skipped;
      continue;
    }
    o << line_card(c, "lesson metric");
  }
  o << cdf_chart(e, color);
  o << "</div>";
  if (skipped) o << "<p class=\"note\">" << skipped << " more lesson metrics in the JSON.</p>";

  // The lesson's figures, naive next to fix.
  std::vector<std::string> figures;
  for (const auto& s : e.systems)
    for (const auto& [name, value] : s.figures)
      if (value.is_number() && std::find(figures.begin(), figures.end(), name) == figures.end())
        figures.push_back(name);
  if (!figures.empty()) {
    o << "<h4 class=\"sub\">Figures</h4><div class=\"charts bars\">";
    for (const auto& f : figures) o << figure_bars(f, e, color);
    o << "</div>";
  }
  bool traced = false;
  for (std::size_t i = 0; i < e.systems.size(); ++i)
    if (!e.systems[i].messages.empty() || !e.systems[i].node_events.empty()) {
      if (!traced) o << "<h4 class=\"sub\">Message diagrams</h4>";
      traced = true;
      o << space_time(e.systems[i], color[i]);
    }
  o << "<details><summary>Table</summary><pre>" << esc(format_table(e)) << "</pre></details>";
  o << "</section>";
  return o.str();
}

const char* kStyle = R"(
:root{--bg:#fff;--fg:#1d1f23;--muted:#5f6670;--grid:#e4e6ea;--axis:#9aa0a8;--card:#f6f7f9;
--good:#1a7f37;--bad:#c62828;--hover:rgba(120,130,150,.18);--link:#1f5fbf}
@media (prefers-color-scheme:dark){:root{--bg:#15171b;--fg:#e4e6ea;--muted:#9aa3ad;--grid:#2b3038;
--axis:#5c6470;--card:#1d2026;--good:#4cc46a;--bad:#ff6b6b;--hover:rgba(200,210,230,.14);
--link:#7fb0ff}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:1280px;padding:18px 22px 60px;background:var(--bg);color:var(--fg);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
a{color:var(--link)}
h1{font-size:22px;margin:4px 0 6px}h2{font-size:19px;margin:34px 0 4px;padding-top:10px;
border-top:1px solid var(--grid)}h3{font-size:16px;margin:22px 0 2px}
h4{font-size:13px;margin:0 0 4px;font-weight:600}h4.sub{margin:14px 0 6px}
.note,.meta{color:var(--muted);font-weight:400;font-size:12px}.meta{margin:0 0 6px}
.good{color:var(--good)}.bad{color:var(--bad);font-weight:600}
.legend{list-style:none;padding:0;margin:4px 0 10px;display:flex;flex-wrap:wrap;gap:4px 16px}
.swatch{display:inline-block;width:14px;height:4px;border-radius:2px;margin-right:5px;
vertical-align:middle}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:10px}
.card{background:var(--card);border-radius:8px;padding:8px 10px 4px}
.card.wide{margin:10px 0;overflow-x:auto}
svg{display:block;width:100%;height:auto}
svg text{fill:var(--muted);font-size:11px}
.ylab text{text-anchor:end}.xlab text{text-anchor:middle}.xlab .axis-title{text-anchor:end}
.bars .name{text-anchor:end;fill:var(--fg)}.bars .value{fill:var(--fg)}
.grid line{stroke:var(--grid);stroke-width:1}.axis{stroke:var(--axis)}
.line .data,.cdf .data{fill:none;stroke-width:1.8;stroke-linejoin:round}
.line .data circle{stroke:none}
.fault line{stroke:var(--bad);stroke-dasharray:4 3;stroke-width:1.2}.fault text{fill:var(--bad)}
.hover{fill:transparent}.hover:hover{fill:var(--hover)}
.msg line{stroke-width:1.1;opacity:.8}.msg line.lost{stroke-dasharray:3 2}
.msg text.lost{fill:var(--bad);text-anchor:middle;font-size:13px;stroke:none}.msg line:hover{stroke-width:3;opacity:1}
.events circle{fill:var(--bad)}.events text{fill:var(--fg);font-size:10px}
table{border-collapse:collapse;margin:8px 0}td,th{padding:3px 10px;text-align:left;
border-bottom:1px solid var(--grid);vertical-align:top}
ul.claims{list-style:none;padding:0;margin:6px 0}ul.claims li{margin:2px 0}
.mark{display:inline-block;width:1.3em;font-weight:700}
pre{font-size:12px;overflow-x:auto;background:var(--card);padding:8px;border-radius:6px}
details{margin:8px 0}summary{cursor:pointer;color:var(--muted)}
)";

/// A sweep's figures against its first parameter: one chart per figure group (the part of the
/// name before a '.', so "hit.lru" and "hit.fifo" share a chart), a line per figure and per value
/// of the other parameters, the mean with its 95 % interval as a band.
std::string sweep_html(const SweepResult& sw) {
  std::ostringstream o;
  o << "<h3>Sweep: " << esc(sw.name) << " <span class=\"note\">" << sw.seeds.size()
    << " seeds per point, " << sw.runs.size() << " runs; the band is the 95 % confidence "
    << "interval of the mean</span></h3><div class=\"charts\">";
  if (sw.params.empty() || sw.runs.empty()) return o.str() + "</div>";
  const auto& [x_name, x_values] = sw.params.front();
  const std::size_t nx = x_values.size(), others = sw.points() / nx;
  std::map<std::string, std::vector<std::string>> groups;  // group -> figures
  for (const auto& f : sw.figures()) groups[f.substr(0, f.find('.'))].push_back(f);
  const double plot_w = kW - kLeft - kRight;
  auto X = [&](std::size_t i) {
    return kLeft + plot_w * (static_cast<double>(i) + 0.5) / static_cast<double>(nx);
  };
  for (const auto& [group, figures] : groups) {
    struct Line {
      std::string name;
      std::vector<Stats> at;  // per x value
    };
    std::vector<Line> lines;
    for (const auto& f : figures)
      for (std::size_t k = 0; k < others; ++k) {
        Line line;
        line.name = f.find('.') == std::string::npos ? f : f.substr(f.find('.') + 1);
        const Map rest = sw.point_params(k);  // the other parameters of points k, k + others, ...
        for (const auto& [name, value] : rest)
          if (name != x_name) line.name += " · " + name + "=" + format_value(value);
        for (std::size_t i = 0; i < nx; ++i) line.at.push_back(sw.stats(i * others + k, f));
        lines.push_back(std::move(line));
      }
    double lo = 0, hi = 0;
    for (const auto& l : lines)
      for (const auto& st : l.at)
        if (st.n) lo = std::min(lo, st.lo), hi = std::max(hi, st.hi);
    if (hi <= lo) hi = lo + 1;
    const auto ys = ticks(lo, hi, 4);
    hi = std::max(hi, ys.back());
    auto Y = [&](double v) { return kH - kBottom - (kH - kTop - kBottom) * (v - lo) / (hi - lo); };
    o << "<div class=\"card\"><h4>" << esc(group) << " <span class=\"note\">by " << esc(x_name)
      << "</span></h4><svg class=\"chart sweep\" viewBox=\"0 0 " << kW << " " << kH
      << "\" role=\"img\" aria-label=\"" << esc(group) << "\"><g class=\"grid\">";
    for (double t : ys)
      o << "<line x1=\"" << kLeft << "\" x2=\"" << kW - kRight << "\" y1=\"" << num(Y(t))
        << "\" y2=\"" << num(Y(t)) << "\"/>";
    o << "</g><g class=\"ylab\">";
    for (double t : ys)
      o << "<text x=\"" << kLeft - 5 << "\" y=\"" << num(Y(t) + 4) << "\">" << esc(num(t))
        << "</text>";
    o << "</g><g class=\"xlab\">";
    for (std::size_t i = 0; i < nx; ++i)
      o << "<text x=\"" << num(X(i)) << "\" y=\"" << kH - kBottom + 15 << "\">"
        << esc(format_value(x_values[i])) << "</text>";
    o << "<text class=\"axis-title\" x=\"" << kW - kRight << "\" y=\"" << kH - 2 << "\">"
      << esc(x_name) << "</text></g>";
    for (std::size_t l = 0; l < lines.size(); ++l) {
      const std::string color = kCool[l % std::size(kCool)];
      std::string band_top, band_bottom, mean;
      for (std::size_t i = 0; i < nx; ++i) {
        const Stats& st = lines[l].at[i];
        if (!st.n) continue;
        band_top += num(X(i)) + "," + num(Y(st.hi)) + " ";
        band_bottom = num(X(i)) + "," + num(Y(st.lo)) + " " + band_bottom;
        mean += num(X(i)) + "," + num(Y(st.mean)) + " ";
      }
      o << "<g class=\"data\" stroke=\"" << color << "\"><title>" << esc(lines[l].name)
        << "</title><polygon points=\"" << band_top << band_bottom << "\" fill=\"" << color
        << "\" fill-opacity=\"0.18\" stroke=\"none\"/><polyline points=\"" << mean << "\"/>";
      for (std::size_t i = 0; i < nx; ++i)
        if (lines[l].at[i].n)
          o << "<circle r=\"2.5\" fill=\"" << color << "\" cx=\"" << num(X(i)) << "\" cy=\""
            << num(Y(lines[l].at[i].mean)) << "\"/>";
      o << "</g><text class=\"legend\" x=\"" << kLeft + 6 << "\" y=\"" << kTop + 10 + 12 * l
        << "\" style=\"fill:" << color << "\">" << esc(lines[l].name) << "</text>";
    }
    for (std::size_t i = 0; i < nx; ++i) {  // hover: every line's mean and interval at this x
      std::string tip = x_name + " = " + format_value(x_values[i]);
      for (const auto& l : lines) {
        const Stats& st = l.at[i];
        tip += "\n" + l.name + ": " +
               (st.n ? num(st.mean) + " [" + num(st.lo) + ", " + num(st.hi) + "]" : "-");
      }
      o << "<rect class=\"hover\" x=\""
        << num(kLeft + plot_w * static_cast<double>(i) / static_cast<double>(nx)) << "\" y=\""
        << kTop << "\" width=\"" << num(plot_w / static_cast<double>(nx)) << "\" height=\""
        << kH - kTop - kBottom << "\"><title>" << esc(tip) << "</title></rect>";
    }
    o << "</svg></div>";
  }
  o << "</div><details><summary>Sweep table</summary><pre>" << esc(format_sweep(sw))
    << "</pre></details>";
  return o.str();
}

std::string verdict_html(const std::string& v) {
  if (v.empty()) return "";
  return "<span class=\"" + std::string(v == "PASS" ? "good" : "bad") + "\">" + esc(v) + "</span>";
}

std::string claims_html(const ScriptResult& r) {
  std::ostringstream o, checks;
  std::size_t passed_checks = 0;
  auto item = [](const Expectation& c) {
    return "<li><span class=\"mark " + std::string(c.passed ? "good\">✓" : "bad\">✗") + "</span>" +
           esc(c.message) + (c.claim ? "" : " <span class=\"note\">(sanity check)</span>") +
           (c.passed ? "" : " <span class=\"note\">" + esc(c.where) + "</span>") + "</li>";
  };
  o << "<ul class=\"claims\">";
  for (const auto& c : r.expectations) {
    if (c.claim || !c.passed)
      o << item(c);
    else
      checks << item(c), ++passed_checks;
  }
  o << "</ul>";
  if (passed_checks)
    o << "<details><summary>" << passed_checks
      << " sanity checks passed</summary><ul class=\"claims\">" << checks.str()
      << "</ul></details>";
  return o.str();
}

}  // namespace

std::string render_report(const std::string& title, const std::vector<ReportSection>& sections) {
  std::ostringstream o;
  o << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    << "<meta name=\"color-scheme\" content=\"light dark\"><title>" << esc(title)
    << "</title><style>" << kStyle << "</style></head><body><h1>" << esc(title) << "</h1>";
  o << "<p class=\"meta\">Virtual time on the x axes. Hover a chart for the values; warm colours "
       "are the naive variants, cool ones the fixes; dashed red lines are fault injections.</p>";
  const bool tour = sections.size() > 1;
  if (tour) {
    o << "<table class=\"summary\"><tr><th>lesson</th><th>claims</th><th>verdict</th>"
         "<th>headline</th></tr>";
    for (const auto& s : sections)
      o << "<tr><td><a href=\"#" << esc(s.name) << "\">" << esc(s.name) << "</a></td><td>"
        << esc(s.claims) << "</td><td>" << verdict_html(s.verdict) << "</td><td>" << esc(s.headline)
        << "</td></tr>";
    o << "</table>";
  }
  for (const auto& s : sections) {
    o << "<section class=\"lesson\" id=\"" << esc(s.name) << "\">";
    if (tour || !s.title.empty())  // (a single script's page has its name as the title)
      o << "<h2>" << esc(s.name) << (s.title.empty() ? "" : " — " + esc(s.title)) << " "
        << verdict_html(s.verdict) << "</h2>";
    if (!s.headline.empty()) o << "<p><strong>" << esc(s.headline) << "</strong></p>";
    if (!s.result) {
      o << "</section>";
      continue;
    }
    const ScriptResult& r = *s.result;
    if (!r.error.empty()) o << "<p class=\"bad\">" << esc(r.error) << "</p>";
    if (r.experiments.size() > 1) {
      o << "<p class=\"meta\">Experiments:";
      for (std::size_t i = 0; i < r.experiments.size(); ++i)
        o << (i ? " · " : " ") << "<a href=\"#" << esc(s.name) << "-" << i << "\">"
          << esc(r.experiments[i].name) << "</a>";
      o << "</p>";
    }
    o << claims_html(r);
    for (std::size_t i = 0; i < r.experiments.size(); ++i)
      o << experiment_html(r.experiments[i], s.name + "-" + std::to_string(i));
    for (const auto& sw : r.sweeps) o << sweep_html(sw);
    if (!r.output.empty())
      o << "<details><summary>Script output</summary><pre>" << esc(r.output) << "</pre></details>";
    o << "</section>";
  }
  o << "</body></html>\n";
  return o.str();
}

}  // namespace hldlab
