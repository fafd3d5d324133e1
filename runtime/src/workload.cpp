#include "hldlab/runtime/workload.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "hldlab/runtime/kernel.hpp"

namespace hldlab {
namespace {
std::string number(double v) {
  std::ostringstream out;
  out << v;
  return out.str();
}
// Stream numbers: one per field of a request, derived from the experiment seed.
enum Stream : std::uint64_t { arrival_times = 101, client_ids, keys, services, ops, sizes, closed };
}  // namespace

double Arrivals::rate_at(Time t) const {
  for (const Spike& s : spikes)
    if (t >= s.start && t < s.end) return s.rps;
  if (ramp_to_rps >= 0 && t >= ramp_start) {
    if (t >= ramp_end || ramp_end == ramp_start) return ramp_to_rps;
    const double f =
        static_cast<double>(t - ramp_start) / static_cast<double>(ramp_end - ramp_start);
    return rps + (ramp_to_rps - rps) * f;
  }
  return rps;
}

double Arrivals::peak_rate() const {
  double peak = std::max(rps, ramp_to_rps);
  for (const Spike& s : spikes) peak = std::max(peak, s.rps);
  return peak;
}

std::string Arrivals::describe() const {
  if (kind == Kind::trace) return trace->describe();
  if (kind == Kind::closed)
    return "closed loop, " + number(clients) + " clients, think " + think.describe();
  std::string text = (kind == Kind::poisson ? "poisson " : "constant ") + number(rps) + " rps";
  if (ramp_to_rps >= 0) text += " ramping to " + number(ramp_to_rps);
  for (const Spike& s : spikes) text += ", spike " + number(s.rps) + " rps";
  return text;
}

std::string Workload::describe(bool with_service) const {
  std::string text = arrivals.describe() + "; keys " + keys.describe();
  if (with_service) text += "; service " + service.describe();
  if (write_share > 0) text += "; writes " + number(write_share * 100) + "%";
  if (has_sizes) text += "; sizes " + sizes.describe(false);
  return text;
}

void draw_request(const Workload& w, Rng& key, Rng& service, Rng& op, Rng& size, Request& r) {
  r.key = w.keys.sample(key);
  r.service = w.service.sample_time(service);
  r.op = w.write_share > 0 && op.chance(w.write_share) ? Op::write : Op::read;
  r.size = w.has_sizes
               ? static_cast<std::uint32_t>(std::clamp(std::round(w.sizes.sample(size)), 1.0, 4e9))
               : 1;
}

RequestStream::RequestStream(const Workload& workload, Time duration, std::uint64_t seed)
    : workload_(workload),
      duration_(duration),
      arrivals_(Rng::derive(seed, arrival_times)),
      clients_(Rng::derive(seed, client_ids)),
      keys_(Rng::derive(seed, keys)),
      service_(Rng::derive(seed, services)),
      ops_(Rng::derive(seed, ops)),
      sizes_(Rng::derive(seed, sizes)),
      next_(Kernel::kNever),
      peak_rate_(workload.arrivals.peak_rate()),
      peak_gap_(1e9 / peak_rate_),
      steady_rate_(workload.arrivals.spikes.empty() && workload.arrivals.ramp_to_rps < 0) {
  if (workload_.arrivals.kind == Arrivals::Kind::trace)
    trace_ = std::make_unique<TraceReader>(*workload_.arrivals.trace);
  if (workload_.arrivals.kind != Arrivals::Kind::closed) advance();
}

void RequestStream::add_gap(double ns) {
  const double x = frac_ + ns;
  const double whole = std::floor(x);
  if (whole >= static_cast<double>(duration_ - t_)) {
    t_ = duration_;
    return;
  }
  t_ += static_cast<Time>(whole);
  frac_ = x - whole;
}

void RequestStream::advance() {
  const Arrivals& a = workload_.arrivals;
  if (trace_) {
    if (!trace_->next(record_)) {
      next_ = Kernel::kNever;
      return;
    }
    const double rps = trace_->spec().rps;
    const double t = rps > 0 ? static_cast<double>(replayed_) * 1e9 / rps : record_.time;
    ++replayed_;
    next_ = t < static_cast<double>(duration_) ? round_time(t) : Kernel::kNever;
    return;
  }
  if (a.kind == Arrivals::Kind::poisson) {
    // Thinning (Lewis and Shedler): candidates at the peak rate, kept with rate(t) / peak. At a
    // steady rate every candidate is kept, without a draw.
    for (;;) {
      add_gap(arrivals_.exponential(peak_gap_));
      if (t_ >= duration_) {
        next_ = Kernel::kNever;
        return;
      }
      if (steady_rate_ || arrivals_.chance(a.rate_at(t_) / peak_rate_)) break;
    }
  } else {
    double rate = a.rate_at(t_);
    while (rate <= 0) {  // idle stretch (e.g. before a spike): look again 1 ms later
      t_ += milliseconds(1);
      frac_ = 0;
      if (t_ >= duration_) {
        next_ = Kernel::kNever;
        return;
      }
      rate = a.rate_at(t_);
    }
    add_gap(1e9 / rate);
    if (t_ >= duration_) {
      next_ = Kernel::kNever;
      return;
    }
  }
  next_ = t_;
}

std::size_t RequestStream::fill(std::vector<Request>& out, std::size_t max) {
  // Requests arriving at the same nanosecond stay in one batch: the next batch then starts
  // strictly later, which is what lets a batch end be a synchronisation point.
  std::size_t n = 0;
  for (; (n < max || (n > 0 && next_ == out.back().arrival)) && next_ != Kernel::kNever; ++n) {
    Request& r = out.emplace_back();
    r.id = next_id_++;
    r.arrival = next_;
    r.client = static_cast<std::uint32_t>(clients_.below(workload_.clients));
    draw_request(workload_, keys_, service_, ops_, sizes_, r);
    if (trace_) {  // the trace's own key, size and op
      r.key = record_.key;
      if (trace_->spec().size_column > 0 ||
          trace_->spec().format == TraceSpec::Format::oracle_general)
        r.size = record_.size;
      if (record_.has_op) r.op = record_.op;
    }
    advance();
  }
  return n;
}

ClosedLoopDraw draw_closed_loop(const Workload& w, std::uint64_t seed, std::uint64_t id) {
  const std::uint64_t base = Rng::derive(Rng::derive(seed, closed), id);
  Rng key(Rng::derive(base, 1)), service(Rng::derive(base, 2)), op(Rng::derive(base, 3)),
      size(Rng::derive(base, 4)), think(Rng::derive(base, 5));
  ClosedLoopDraw d;
  d.request.id = id;
  d.request.client = static_cast<std::uint32_t>(id & ((1u << 20) - 1));
  draw_request(w, key, service, op, size, d.request);
  d.think = w.arrivals.think.sample_time(think);
  return d;
}

}  // namespace hldlab
