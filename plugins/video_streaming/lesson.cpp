// Video streaming: a player downloads a video segment by segment over a link whose bandwidth
// varies, and picks each segment's bitrate from a ladder.
//
//   problem:  fixed_high -> always the top rung: on a slow link a segment takes longer to
//             download than it plays: the buffer empties, playback stalls (rebuffering).
//   problem:  fixed_low  -> always a low rung: never stalls, but a fast link is wasted.
//   fix:      throughput -> rung = highest <= safety x harmonic mean of the last 5 segments'
//             download throughputs (the harmonic mean is not fooled by one fast segment).
//   fix:      bba        -> buffer-based (Huang et al., SIGCOMM 2014): the buffer level picks the
//             rung: the lowest below the reservoir, the highest above reservoir + cushion,
//             linear in between. No estimate to get wrong; the buffer absorbs the drops.
//
// Model: a request is a viewing session of `video` seconds in segments of `segment` seconds.
// Its link: a base rate ~ lognormal(link_median, link_p99) (steady), or that rate alternating
// with drops to `drop` x rate (markov: good ~ exp(good_time), bad ~ exp(bad_time)); drawn from
// a generator seeded by the request id, so every variant sees the same link. A segment of
// bitrate b takes b x segment bits, downloaded at the link's rate as it varies (plus rtt).
// The player downloads the next segment when the buffer has room (max_buffer), starts playing
// after the first segment (startup delay), and stalls when the buffer empties. The session
// completes (ok) when the last segment has played, or as an error when the viewer gives up
// (startup + stalls beyond abandon_after). The workload's service time is not used.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;

enum class Variant { fixed_high, fixed_low, throughput, bba };

/// A session's link: piecewise constant bandwidth (bits per second), generated as time goes.
class Link {
 public:
  Link(double rate, bool markov, double drop, double good_mean, double bad_mean, std::uint64_t seed)
      : rate_(rate),
        markov_(markov),
        drop_(drop),
        good_mean_(good_mean),
        bad_mean_(bad_mean),
        rng_(seed) {
    if (markov_) end_ = rng_.exponential(good_mean_);
  }
  /// Seconds to download `bits` starting at time `t` (seconds since the session started).
  double download(double t, double bits) {
    double elapsed = 0;
    while (true) {
      advance_to(t + elapsed);
      const double rate = good_ ? rate_ : rate_ * drop_;
      const double room = markov_ ? end_ - (t + elapsed) : 1e300;
      if (bits <= rate * room) return elapsed + bits / rate;
      bits -= rate * room;
      elapsed += room;
    }
  }

 private:
  void advance_to(double t) {
    while (markov_ && t >= end_) {
      good_ = !good_;
      end_ += rng_.exponential(good_ ? good_mean_ : bad_mean_);
    }
  }
  double rate_;
  bool markov_;
  double drop_, good_mean_, bad_mean_;
  Rng rng_;
  bool good_ = true;
  double end_ = 1e300;
};

/// What one session did.
struct Session {
  double startup = 0, stalled = 0, bitrate_sum = 0, length = 0;
  std::int64_t segments = 0, switches = 0, stalls = 0;
  std::size_t first_rung = 0;
  bool abandoned = false;
};

class Player final : public System {
 public:
  Player(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        ladder_(p.numbers("ladder")),
        segment_(to_seconds(p.duration("segment"))),
        segments_(static_cast<std::int64_t>(std::ceil(to_seconds(p.duration("video")) / segment_))),
        max_buffer_(to_seconds(p.duration("max_buffer"))),
        rtt_(to_seconds(p.duration("rtt"))),
        safety_(p.real("safety")),
        reservoir_(to_seconds(p.duration("reservoir"))),
        cushion_(to_seconds(p.duration("cushion"))),
        low_rung_(p.integer<std::size_t>("low_rung")),
        link_rate_(Distribution::lognormal(p.real("link_median") * 1e6, p.real("link_p99") * 1e6)),
        markov_(p.string("link") == "markov"),
        drop_(p.real("drop")),
        good_time_(to_seconds(p.duration("good_time"))),
        bad_time_(to_seconds(p.duration("bad_time"))),
        link_salt_(ctx.salt("link")),
        abandon_after_(to_seconds(p.duration("abandon_after"))),
        stall_metric_(ctx.metric("rebuffer_seconds")),
        played_metric_(ctx.metric("played_seconds")),
        switches_metric_(ctx.metric("bitrate_switches")) {
    std::sort(ladder_.begin(), ladder_.end());
    if (ladder_.empty()) throw std::invalid_argument("the ladder needs at least one bitrate");
    low_rung_ = std::min(low_rung_, ladder_.size() - 1);
  }

  void handle(const Request& r) override {
    Rng draw(Rng::hash(r.id ^ link_salt_));
    const double rate = link_rate_.sample(draw);
    Link link(rate, markov_, drop_, good_time_, bad_time_, draw.next());
    const Session s = play(link);
    if (r.arrival >= counting_from_) {
      ++sessions_;
      startup_.record(round_time(s.startup * 1e9));
      stalled_ += s.stalled;
      played_ += static_cast<double>(s.segments) * segment_;
      bitrate_sum_ += s.bitrate_sum;
      segments_played_ += s.segments;
      switches_ += s.switches;
      stalls_ += s.stalls;
      sessions_with_stall_ += s.stalls > 0;
      abandoned_ += s.abandoned;
      link_sum_ += rate;
    }
    stall_metric_.add(s.stalled);
    played_metric_.add(static_cast<double>(s.segments) * segment_);
    switches_metric_.add(static_cast<double>(s.switches));
    const Outcome outcome = s.abandoned ? Outcome::error : Outcome::ok;
    ctx_.after(round_time(s.length * 1e9), [this, r, outcome] { ctx_.complete(r, outcome); });
  }

  Value call(const std::string&, const Value& args) override {  // "session"
    Link link(args["rate"].as_double() * 1e6, false, 1, 1, 1, 0);
    const Session s = play(link);
    return Map{{"startup", s.startup},
               {"stalled", s.stalled},
               {"mean_bitrate", s.bitrate_sum / static_cast<double>(s.segments)},
               {"switches", s.switches},
               {"last_rung", last_rung_}};
  }

  Map figures() const override {
    const double segments = static_cast<double>(segments_played_);
    const double sessions = static_cast<double>(sessions_);
    return {
        {"sessions", sessions_},
        {"abandoned", abandoned_},
        {"rebuffer_ratio", played_ > 0 ? stalled_ / played_ : 0.0},
        {"sessions_with_stall", sessions_with_stall_},
        {"stalls", stalls_},
        {"mean_bitrate", segments > 0 ? bitrate_sum_ / segments : 0.0},
        {"mean_link", sessions > 0 ? link_sum_ / sessions / 1e6 : 0.0},
        {"switches_per_session", sessions > 0 ? static_cast<double>(switches_) / sessions : 0.0},
        {"startup_mean", to_seconds(static_cast<Time>(startup_.mean()))},
        {"startup_p99", to_seconds(startup_.quantile(0.99))}};
  }

  void reset_stats() override {
    sessions_ = segments_played_ = switches_ = stalls_ = sessions_with_stall_ = abandoned_ = 0;
    stalled_ = played_ = bitrate_sum_ = link_sum_ = 0;
    startup_.reset();
    counting_from_ = ctx_.now();
  }

 private:
  /// The highest rung whose bitrate is at most `bps` (the lowest if none is).
  std::size_t rung_at_most(double bps) const {
    std::size_t rung = 0;
    for (std::size_t i = 0; i < ladder_.size(); ++i)
      if (ladder_[i] * 1e6 <= bps) rung = i;
    return rung;
  }

  std::size_t choose(const std::vector<double>& throughputs, double buffer) const {
    switch (variant_) {
      case Variant::fixed_high:
        return ladder_.size() - 1;
      case Variant::fixed_low:
        return low_rung_;
      case Variant::throughput: {
        if (throughputs.empty()) return 0;  // nothing measured yet: start low
        const std::size_t n = std::min<std::size_t>(5, throughputs.size());
        double inverse = 0;
        for (std::size_t i = throughputs.size() - n; i < throughputs.size(); ++i)
          inverse += 1 / throughputs[i];
        return rung_at_most(safety_ * static_cast<double>(n) / inverse);
      }
      case Variant::bba: {
        if (buffer <= reservoir_) return 0;
        if (buffer >= reservoir_ + cushion_) return ladder_.size() - 1;
        // Linear rate map from the lowest to the highest bitrate across the cushion.
        const double f = (buffer - reservoir_) / cushion_;
        return rung_at_most((ladder_.front() + f * (ladder_.back() - ladder_.front())) * 1e6);
      }
    }
    return 0;
  }

  Session play(Link& link) {
    Session s;
    std::vector<double> throughputs;
    double t = 0, buffer = 0;
    std::size_t previous = 0;
    for (std::int64_t i = 0; i < segments_; ++i) {
      if (buffer + segment_ > max_buffer_) {  // no room: wait while it plays
        const double wait = buffer + segment_ - max_buffer_;
        t += wait;
        buffer -= wait;
      }
      const std::size_t rung = choose(throughputs, buffer);
      const double bits = ladder_[rung] * 1e6 * segment_;
      const double download = rtt_ + link.download(t + rtt_, bits);
      throughputs.push_back(bits / download);
      const double waited = s.startup + s.stalled;  // the viewer's patience so far
      if (i == 0) {
        if (download > abandon_after_) {  // gave up before the first frame
          s.abandoned = true;
          s.startup = abandon_after_;
          s.length = abandon_after_;
          return s;
        }
        s.startup = download;
        s.first_rung = rung;
      } else {
        if (download > buffer && waited + download - buffer > abandon_after_) {
          s.abandoned = true;  // stalled too long: gave up mid-stall
          s.stalled += abandon_after_ - waited;
          ++s.stalls;
          s.length = t + buffer + abandon_after_ - waited;
          return s;
        }
        if (download > buffer) {
          s.stalled += download - buffer;
          ++s.stalls;
          buffer = 0;
        } else {
          buffer -= download;
        }
        s.switches += rung != previous;
      }
      buffer += segment_;
      t += download;
      s.bitrate_sum += ladder_[rung];
      ++s.segments;
      previous = rung;
    }
    last_rung_ = static_cast<std::int64_t>(previous);
    s.length = t + buffer;
    return s;
  }

  Variant variant_;
  Context& ctx_;
  std::vector<double> ladder_;  // Mbit/s, ascending
  double segment_;
  std::int64_t segments_;
  double max_buffer_, rtt_, safety_, reservoir_, cushion_;
  std::size_t low_rung_;
  Distribution link_rate_;
  bool markov_;
  double drop_, good_time_, bad_time_;
  std::uint64_t link_salt_;
  double abandon_after_;
  Metric& stall_metric_;
  Metric& played_metric_;
  Metric& switches_metric_;
  std::int64_t last_rung_ = 0;

  Time counting_from_ = 0;
  std::int64_t sessions_ = 0, segments_played_ = 0, switches_ = 0, stalls_ = 0,
               sessions_with_stall_ = 0, abandoned_ = 0;
  double stalled_ = 0, played_ = 0, bitrate_sum_ = 0, link_sum_ = 0;
  Histogram startup_;  // ns
};

LessonInfo info() {
  return {
      "video_streaming",
      "Video streaming: one fixed bitrate stalls slow links or wastes fast ones; adaptive "
      "bitrate does neither",
      "A player that always streams the top bitrate downloads each segment slower than it plays "
      "on a slow link or during a bandwidth drop: the buffer empties and playback stalls. One "
      "that always streams a low bitrate never stalls but shows a blurry picture on a link that "
      "could carry far more.",
      "Adaptive bitrate: pick each segment's bitrate from the ladder. Throughput-based: the "
      "highest bitrate under a safety share of the harmonic mean of the last segments' "
      "download rates. Buffer-based (BBA): the buffer level picks it — the lowest below a "
      "reservoir, the highest above reservoir + cushion, linear in between.",
      {"Netflix: buffer-based ABR (Huang et al., \"A Buffer-Based Approach to Rate Adaptation\", "
       "SIGCOMM 2014), per-title encoding ladders",
       "YouTube, Twitch: DASH/HLS players with throughput and buffer rules",
       "dash.js (BOLA, throughput rule), hls.js (EWMA bandwidth estimate), Shaka Player",
       "MPC / FastMPC (Yin et al., SIGCOMM 2015), Pensieve (Mao et al., SIGCOMM 2017)"},
      {{"fixed_high", true, "always the top rung: stalls on slow links"},
       {"fixed_low", true, "always a low rung: wastes fast links"},
       {"throughput", false, "highest rung under safety x harmonic mean of last 5 throughputs"},
       {"bba", false, "buffer-based: reservoir, cushion, linear rate map"}},
      {{"ladder", ParamType::number_list, List{0.3, 0.75, 1.2, 1.85, 2.85, 4.3},
        "bitrates of the ladder, Mbit/s"},
       {"low_rung", ParamType::integer, 1, "fixed_low: the rung it streams (0 = lowest)", 0, 100},
       {"segment", ParamType::duration, "4s", "video seconds per segment", 0.01, 600},
       {"video", ParamType::duration, "300s", "length of the video of a session", 0.01, 1e6},
       {"max_buffer", ParamType::duration, "60s", "the player buffers at most this", 0.01, 1e6},
       {"rtt", ParamType::duration, "50ms", "request time added to each segment", 0, 60},
       {"safety", ParamType::real, 0.9, "throughput: share of the estimate it may use", 0.01, 10},
       {"reservoir", ParamType::duration, "10s", "bba: below this buffer, the lowest rung", 0, 1e6},
       {"cushion", ParamType::duration, "30s", "bba: buffer span of the linear rate map", 0.01,
        1e6},
       {"link", ParamType::string, "markov", "bandwidth process", 0, 0, {"steady", "markov"}},
       {"link_median", ParamType::real, 3.0, "median session link rate, Mbit/s", 1e-3, 1e6},
       {"link_p99", ParamType::real, 20.0, "P99 session link rate, Mbit/s", 1e-3, 1e6},
       {"drop", ParamType::real, 0.2, "markov: rate share during a drop", 1e-3, 1},
       {"good_time", ParamType::duration, "30s", "markov: mean time between drops", 0.01, 1e6},
       {"bad_time", ParamType::duration, "10s", "markov: mean length of a drop", 0.01, 1e6},
       {"abandon_after", ParamType::duration, "60s",
        "the viewer leaves once startup + stalls exceed this (the session ends as an error)", 0.01,
        1e6}},
      {},
      {{"session",
        "play one session on a constant link of `rate` Mbit/s and return startup, "
        "stalled, mean_bitrate, switches and the last rung",
        {{"rate", ParamType::real, 2.0, "link rate, Mbit/s", 1e-3, 1e6}}}},
      {{"rebuffer_seconds", MetricSpec::Kind::counter, "seconds of playback stalled"},
       {"played_seconds", MetricSpec::Kind::counter, "seconds of video played"},
       {"bitrate_switches", MetricSpec::Kind::counter, "bitrate changes between segments"}},
      {{"sessions", Unit::count, "viewing sessions"},
       {"abandoned", Unit::count, "sessions the viewer left after abandon_after of waiting"},
       {"rebuffer_ratio", Unit::fraction, "stalled time / video time played"},
       {"sessions_with_stall", Unit::count, "sessions that stalled at least once"},
       {"stalls", Unit::count, "rebuffering events"},
       {"mean_bitrate", Unit::number, "mean bitrate of the segments played, Mbit/s"},
       {"mean_link", Unit::number, "mean base link rate of the sessions, Mbit/s"},
       {"switches_per_session", Unit::number, "bitrate changes per session"},
       {"startup_mean", Unit::seconds, "mean time to the first frame"},
       {"startup_p99", Unit::seconds, "P99 time to the first frame"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {{"fixed_high", Variant::fixed_high},
                                                             {"fixed_low", Variant::fixed_low},
                                                             {"throughput", Variant::throughput},
                                                             {"bba", Variant::bba}};
  return std::make_unique<Player>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
