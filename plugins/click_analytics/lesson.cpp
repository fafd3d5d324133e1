// Ad click analytics: count the clicks per ad and per time window (billing, dashboards).
//
//   problem:  insert_every_click -> INSERT INTO clicks (id, ad, event_time) for every click;
//               SELECT count(*) ... GROUP BY ad, window when asked.
//             DB writes/s = clicks/s: beyond the database's capacity its queue fills, clicks
//             wait seconds for their insert and then are refused (lost clicks).
//   fix:      aggregate in the stream (log -> stream processor): count per (window, ad) in
//             memory, write one row per (window, ad) when the window closes:
//             DB writes/s = ads clicked per window / window.
//   problem:  processing_time -> window = floor(arrival / window): a click from a phone that
//               was offline, or one arriving just after a boundary, lands in the wrong window.
//   fix:      event_time -> window = floor(event_time / window); the watermark
//               W = max event time seen - out_of_orderness says "nothing older is expected";
//               a window is written when W >= its end; a click for a written window updates
//               it (one more write) while W < end + allowed_lateness, and is dropped (counted
//               in dropped_late) after.
//   problem:  a client that missed the ack sends the click again: counted twice.
//   fix:      event_time_dedup -> each window remembers the click ids it counted (a
//               duplicate has the same event time, so the same window); a repeat is ignored.
//
// Model: a request is a click reaching the collector at its arrival; its event time is the
// arrival minus the client's delay (lognormal for most clicks, uniform(0, late_max) for the
// late_share that come from offline clients); duplicate_share of the clicks are sent again
// retry_after later (same id, same event time). Delays and duplicates are drawn per click
// from its id (common random numbers: every variant sees the same stream). The database is
// a Server (db_workers, db_write_time per row, db_queue_limit waiting writes). The stream
// variants acknowledge a click once it is appended to the log (ack_time) and count it then.
// The lesson knows the true count of every (window, ad) and compares it with what the
// database holds (count_error). An event-time source that has been idle for idle_timeout
// lets its watermark follow the clock (now - out_of_orderness), so the last windows close.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/fifo.hpp"
#include "hldlab/lognormal_durations.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Variant { insert_every_click, processing_time, event_time, event_time_dedup };

/// Cost model of the aggregator's memory: a (window, ad) count and a remembered click id.
constexpr std::int64_t kCellBytes = 16;  // ad id + count
constexpr std::int64_t kIdBytes = 8;     // click id in an open-addressing set
/// Click ids of crafted clicks (the `click` operation) live apart from request ids.
constexpr std::uint64_t kCraftedIds = std::uint64_t{1} << 62;

struct Click {
  std::uint64_t id = 0;
  Time event_time = 0;
  std::uint32_t ad = 0;
  bool duplicate = false;  // a repeat of an earlier click (known to the lesson, not the stream)
};

/// One (window, ad) pair: the key of the result table.
struct Cell {
  std::int64_t window = 0;
  std::uint32_t ad = 0;
  bool operator==(const Cell& o) const { return window == o.window && ad == o.ad; }
};
struct CellHash {
  std::size_t operator()(const Cell& c) const {
    return Rng::hash(static_cast<std::uint64_t>(c.window) * 0x9E3779B97F4A7C15ULL ^ c.ad);
  }
};
/// What the lesson knows about a cell: the true count, and the count the database holds.
struct CellCounts {
  std::int64_t truth = 0;
  std::int64_t reported = 0;
};

/// A set of click ids (open addressing, linear probing; 0 marks an empty slot, so ids are
/// stored + 1). No erase: a window's set is dropped whole when the window is purged.
class IdSet {
 public:
  /// False when `id` was already in the set.
  bool insert(std::uint64_t id) {
    if ((size_ + 1) * 2 > slots_.size()) grow();
    std::uint64_t& slot = find(id + 1);
    if (slot != 0) return false;
    slot = id + 1;
    ++size_;
    return true;
  }
  bool contains(std::uint64_t id) const {
    return !slots_.empty() && const_cast<IdSet*>(this)->find(id + 1) != 0;
  }
  std::size_t size() const { return size_; }

 private:
  std::uint64_t& find(std::uint64_t stored) {
    const std::size_t mask = slots_.size() - 1;
    for (std::size_t i = Rng::hash(stored) & mask;; i = (i + 1) & mask)
      if (slots_[i] == 0 || slots_[i] == stored) return slots_[i];
  }
  void grow() {
    std::vector<std::uint64_t> old(slots_.empty() ? 64 : slots_.size() * 2, 0);
    old.swap(slots_);
    for (std::uint64_t stored : old)
      if (stored != 0) find(stored) = stored;
  }
  std::vector<std::uint64_t> slots_;
  std::size_t size_ = 0;
};

/// The aggregator's state for one open window.
struct Window {
  std::vector<std::int64_t> count;  // per ad
  std::vector<std::uint32_t> ads;   // ads with a count, in the order they were first seen
  IdSet ids;                        // event_time_dedup: ids counted in this window
  bool fired = false;               // its result has been written once
};

/// A row write: a click inserted (naive) or a window's count upserted (stream variants).
struct DbWrite {
  Request request;  // the click waiting for its insert (naive, first delivery only)
  Cell cell;
  std::int64_t count = 0;  // upsert: the count to write
  bool insert = false;     // insert: one more row for the cell
  bool duplicate = false;  // insert: of a repeated click
  bool answers = false;    // completes `request` when done (else the write is held work)
};

std::int64_t floor_div(Time t, Time d) {
  return t / d - ((t % d) < 0 ? 1 : 0);
}

class ClickAnalytics final : public System {
 public:
  ClickAnalytics(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        ads_(p.integer<std::uint32_t>("ads")),
        window_(p.duration("window")),
        lateness_(p.duration("allowed_lateness")),
        out_of_orderness_(p.duration("out_of_orderness")),
        idle_timeout_(p.duration("idle_timeout")),
        watermark_interval_(p.duration("watermark_interval")),
        late_share_(p.real("late_share")),
        late_max_(p.duration("late_max")),
        duplicate_share_(p.real("duplicate_share")),
        retry_after_(p.duration("retry_after")),
        ack_time_(p.duration("ack_time")),
        write_time_(p.duration("db_write_time")),
        draw_salt_(ctx.salt("click delays and retries")),
        clicks_metric_(ctx.metric("clicks")),
        writes_metric_(ctx.metric("db_writes")),
        lost_metric_(ctx.metric("lost_clicks")),
        queue_metric_(ctx.metric("db_queue")),
        dropped_metric_(ctx.metric("dropped_late")),
        removed_metric_(ctx.metric("duplicates_removed")),
        lag_metric_(ctx.metric("watermark_lag_seconds")),
        db_(ctx,
            {.workers = p.integer<int>("db_workers"),
             .queue_limit = p.integer<std::size_t>("db_queue_limit")},
            [this](DbWrite& w) { written(w); }) {
    if (window_ <= 0) throw std::invalid_argument("window must be positive");
    delay_ = lognormal_durations(p, "delay");
  }

  void handle(const Request& r) override {
    // The click's own draws: the same in every variant.
    Rng draw(Rng::hash(r.id ^ draw_salt_));
    const bool late = draw.chance(late_share_);
    const Time delay = late ? round_time(draw.uniform() * static_cast<double>(late_max_))
                            : delay_.sample_time(draw);
    const bool repeated = draw.chance(duplicate_share_);
    const Click click{r.id, ctx_.now() - delay, static_cast<std::uint32_t>(r.key % ads_)};
    if (collector_down_) {  // the client keeps the click and sends it when the collector is back
      buffered_.push_back({r, click, repeated});
      return;
    }
    accept(r, click, repeated);
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "click") {
      const auto ad = static_cast<std::uint64_t>(args["ad"].as_int());
      if (ad >= ads_) throw std::invalid_argument("ad must be below ads");
      deliver({kCraftedIds | static_cast<std::uint64_t>(args["id"].as_int()),
               args["event_time"].as_int(), static_cast<std::uint32_t>(ad),
               args["duplicate"].as_bool()},
              nullptr);
      return {};
    }
    if (op == "table") return table();
    return Map{{"watermark", watermark_ == kNoWatermark ? Value() : Value(to_seconds(watermark_))},
               {"open_windows", static_cast<std::int64_t>(windows_.size())},
               {"state_bytes", state_bytes()},
               {"db_queue", static_cast<std::int64_t>(db_.queued())}};
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "slow_db") {
      db_.set_slow_for(p["factor"].as_double(), p["duration"].as_int());
      return;
    }
    // collector_outage: clicks wait on their clients until it ends, then arrive all at once.
    if (collector_down_) throw std::invalid_argument("the collector is already down");
    collector_down_ = true;
    ctx_.hold();
    ctx_.after(p["duration"].as_int(), [this] {
      collector_down_ = false;
      while (!buffered_.empty()) {
        const Buffered b = buffered_.pop_front();
        accept(b.request, b.click, b.repeated);
      }
      ctx_.release();
    });
  }

  Map figures() const override {
    std::int64_t count_error = 0, wrong_cells = 0;
    for (const auto& [cell, counts] : table_) {
      if (cell.window * window_ < windows_from_) continue;  // windows begun before a warm-up
      const std::int64_t error = counts.reported - counts.truth;
      count_error += error < 0 ? -error : error;
      wrong_cells += error != 0;
    }
    const double traffic = to_seconds(last_arrival_ - counting_from_);
    return {{"clicks", clicks_},
            {"duplicates", duplicates_},
            {"db_writes", db_writes_},
            {"db_writes_per_s", traffic > 0 ? static_cast<double>(db_asked_) / traffic : 0.0},
            {"lost_clicks", lost_clicks_},
            {"misattributed", misattributed_},
            {"late_updates", late_updates_},
            {"dropped_late", dropped_late_},
            {"duplicates_counted", duplicates_counted_},
            {"duplicates_removed", duplicates_removed_},
            {"count_error", count_error},
            {"wrong_cells", wrong_cells},
            {"state_bytes", peak_state_bytes_}};
  }

  /// Counts restart; the figures compare only windows that begin after the warm-up (a window
  /// straddling it mixes clicks before and after).
  void reset_stats() override {
    clicks_ = duplicates_ = db_writes_ = db_asked_ = lost_clicks_ = misattributed_ = late_updates_ =
        dropped_late_ = duplicates_counted_ = duplicates_removed_ = 0;
    counting_from_ = last_arrival_ = windows_from_ = ctx_.now();
    peak_state_bytes_ = state_bytes();
  }

 private:
  static constexpr Time kNoWatermark = std::numeric_limits<Time>::min();

  struct Buffered {
    Request request;
    Click click;
    bool repeated = false;
  };

  /// A click from a request reaches the collector; maybe it comes again later.
  void accept(const Request& r, const Click& click, bool repeated) {
    if (repeated) {
      ctx_.hold();
      ctx_.after(retry_after_, [this, click] {
        Click again = click;
        again.duplicate = true;
        deliver(again, nullptr);
        ctx_.release();
      });
    }
    if (variant_ == Variant::insert_every_click) {
      deliver(click, &r);
      return;
    }
    deliver(click, nullptr);
    const SlotHandle h = acks_.acquire();
    acks_[h] = r;
    ctx_.after(ack_time_, [this, h] {
      ctx_.complete(acks_[h], Outcome::ok);
      acks_.release(h);
    });
  }

  /// One delivery of a click to the pipeline (the first or a repeat). `request`: the click
  /// waits for its insert (naive). The first delivery adds to the true count of its cell.
  void deliver(const Click& click, const Request* request) {
    last_arrival_ = ctx_.now();
    clicks_metric_.add(1);
    if (click.duplicate) {
      ++duplicates_;
    } else {
      ++clicks_;
      ++table_[{floor_div(click.event_time, window_), click.ad}].truth;
    }
    switch (variant_) {
      case Variant::insert_every_click:
        return insert(click, request);
      case Variant::processing_time:
        return count_by_arrival(click);
      case Variant::event_time:
      case Variant::event_time_dedup:
        return count_by_event_time(click);
    }
  }

  // ---- insert every click ---------------------------------------------------------------

  void insert(const Click& click, const Request* request) {
    DbWrite w;
    if (request != nullptr) w.request = *request;
    w.cell = {floor_div(click.event_time, window_), click.ad};
    w.insert = true;
    w.duplicate = click.duplicate;
    w.answers = request != nullptr;
    if (submit(std::move(w))) return;
    ++lost_clicks_;
    lost_metric_.add(1);
    if (request != nullptr) ctx_.complete(*request, Outcome::rejected);
  }

  // ---- processing-time windows ----------------------------------------------------------

  void count_by_arrival(const Click& click) {
    const std::int64_t w = floor_div(ctx_.now(), window_);
    auto [it, opened] = windows_.try_emplace(w);
    if (opened) {
      open(it->second);
      ctx_.hold();  // until the window is written
      ctx_.after((w + 1) * window_ - ctx_.now(), [this, w] {
        auto found = windows_.find(w);
        write_window(w, found->second);
        close(found);
        ctx_.release();
      });
    }
    add(it->second, click.ad);
    if (floor_div(click.event_time, window_) != w) ++misattributed_;
    if (click.duplicate) ++duplicates_counted_;
    peak_state_bytes_ = std::max(peak_state_bytes_, state_bytes());
  }

  // ---- event-time windows with a watermark ----------------------------------------------

  void count_by_event_time(const Click& click) {
    follow_idle_clock();
    last_click_ = ctx_.now();
    const std::int64_t w = floor_div(click.event_time, window_);
    const Time end = (w + 1) * window_;
    auto it = windows_.find(w);
    if (variant_ == Variant::event_time_dedup && it != windows_.end() &&
        it->second.ids.contains(click.id)) {
      ++duplicates_removed_;
      removed_metric_.add(1);
      return;
    }
    if (watermark_ != kNoWatermark && watermark_ >= end + lateness_) {
      ++dropped_late_;  // its window was written and forgotten
      dropped_metric_.add(1);
      return;
    }
    if (it == windows_.end()) {
      it = windows_.try_emplace(w).first;
      open(it->second);
      if (watermark_ != kNoWatermark && watermark_ >= end) it->second.fired = true;  // late
      if (!it->second.fired) unfired_changed(+1);
    }
    Window& window = it->second;
    add(window, click.ad);
    if (variant_ == Variant::event_time_dedup && window.ids.insert(click.id)) ++state_ids_;
    if (click.duplicate) ++duplicates_counted_;
    if (window.fired) {  // a late click within the allowed lateness: write the new count
      ++late_updates_;
      upsert(w, click.ad, window.count[click.ad]);
    }
    peak_state_bytes_ = std::max(peak_state_bytes_, state_bytes());
    if (click.event_time - out_of_orderness_ > watermark_)
      advance(click.event_time - out_of_orderness_);
  }

  /// The watermark moves to `to`: write the windows it passed, forget those beyond lateness.
  void advance(Time to) {
    watermark_ = to;
    lag_metric_.set(to_seconds(ctx_.now() - watermark_));
    for (auto& [w, window] : windows_) {
      if ((w + 1) * window_ > watermark_) break;
      if (window.fired) continue;
      write_window(w, window);
      window.fired = true;
      unfired_changed(-1);
    }
    while (!windows_.empty() && (windows_.begin()->first + 1) * window_ + lateness_ <= watermark_)
      close(windows_.begin());
  }

  /// The source checks every watermark_interval (at multiples of it) whether it has been idle
  /// for idle_timeout; if so its watermark follows the clock. The checks since the last click
  /// are done here, at the next click, or by a timer while a window waits to be written.
  void follow_idle_clock() {
    const Time check = floor_div(ctx_.now(), watermark_interval_) * watermark_interval_;
    if (check - last_click_ >= idle_timeout_ && check - out_of_orderness_ > watermark_)
      advance(check - out_of_orderness_);
  }
  void unfired_changed(int delta) {
    unfired_ += delta;
    if (unfired_ > 0 && !ticking_) {
      ticking_ = true;
      ctx_.hold();  // the drain waits until every window has been written
      schedule_tick();
    }
  }
  void schedule_tick() {
    const Time next = (floor_div(ctx_.now(), watermark_interval_) + 1) * watermark_interval_;
    ctx_.after(next - ctx_.now(), [this] { tick(); });
  }
  void tick() {
    follow_idle_clock();
    if (unfired_ > 0) return schedule_tick();
    ticking_ = false;
    ctx_.release();
  }

  // ---- shared by the stream variants ----------------------------------------------------

  void open(Window& window) { window.count.assign(ads_, 0); }
  void add(Window& window, std::uint32_t ad) {
    if (window.count[ad]++ == 0) {
      window.ads.push_back(ad);
      ++state_cells_;
    }
  }
  void close(std::map<std::int64_t, Window>::iterator it) {
    state_cells_ -= static_cast<std::int64_t>(it->second.ads.size());
    state_ids_ -= static_cast<std::int64_t>(it->second.ids.size());
    windows_.erase(it);
  }
  void write_window(std::int64_t w, const Window& window) {
    for (std::uint32_t ad : window.ads) upsert(w, ad, window.count[ad]);
  }
  void upsert(std::int64_t w, std::uint32_t ad, std::int64_t count) {
    DbWrite write;
    write.cell = {w, ad};
    write.count = count;
    submit(std::move(write));  // refused: the window keeps its old row
  }
  std::int64_t state_bytes() const { return state_cells_ * kCellBytes + state_ids_ * kIdBytes; }

  // ---- database -------------------------------------------------------------------------

  /// Hand a row write to the database; false when it refuses it (queue full).
  bool submit(DbWrite w) {
    ++db_asked_;
    const bool held = !w.answers;
    if (held) ctx_.hold();  // background work: the drain waits for the row
    const Admission a = db_.submit(std::move(w), write_time_);
    queue_metric_.set(static_cast<double>(db_.queued()));
    const bool accepted = a == Admission::started || a == Admission::queued;
    if (!accepted && held) ctx_.release();
    return accepted;
  }
  void written(DbWrite& w) {
    ++db_writes_;
    writes_metric_.add(1);
    queue_metric_.set(static_cast<double>(db_.queued()));
    CellCounts& row = table_[w.cell];
    if (w.insert) {
      ++row.reported;
      if (w.duplicate) ++duplicates_counted_;
    } else {
      row.reported = w.count;
    }
    if (w.answers)
      ctx_.complete(w.request, Outcome::ok);
    else
      ctx_.release();
  }

  Value table() const {
    std::vector<std::pair<Cell, CellCounts>> rows(table_.begin(), table_.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
      return a.first.window != b.first.window ? a.first.window < b.first.window
                                              : a.first.ad < b.first.ad;
    });
    List out;
    for (const auto& [cell, counts] : rows)
      out.push_back(Map{{"window", to_seconds(cell.window * window_)},
                        {"ad", static_cast<std::int64_t>(cell.ad)},
                        {"count", counts.reported},
                        {"truth", counts.truth}});
    return out;
  }

  Variant variant_;
  Context& ctx_;
  std::uint32_t ads_;
  Time window_, lateness_, out_of_orderness_, idle_timeout_, watermark_interval_;
  double late_share_;
  Time late_max_;
  double duplicate_share_;
  Time retry_after_, ack_time_, write_time_;
  std::uint64_t draw_salt_;
  Distribution delay_;
  Metric &clicks_metric_, &writes_metric_, &lost_metric_, &queue_metric_, &dropped_metric_,
      &removed_metric_, &lag_metric_;

  Server<DbWrite> db_;
  SlotPool<Request> acks_;  // stream variants: clicks waiting for their append to the log
  std::map<std::int64_t, Window> windows_;  // the aggregator's open windows, by index
  std::unordered_map<Cell, CellCounts, CellHash> table_;
  Time watermark_ = kNoWatermark;
  Time last_click_ = 0;
  int unfired_ = 0;
  bool ticking_ = false;
  bool collector_down_ = false;
  Fifo<Buffered> buffered_;

  Time counting_from_ = 0, last_arrival_ = 0;
  Time windows_from_ = std::numeric_limits<Time>::min();  // count_error: windows from here on
  std::int64_t state_cells_ = 0, state_ids_ = 0, peak_state_bytes_ = 0;
  std::int64_t clicks_ = 0, duplicates_ = 0, db_writes_ = 0, db_asked_ = 0, lost_clicks_ = 0,
               misattributed_ = 0, late_updates_ = 0, dropped_late_ = 0, duplicates_counted_ = 0,
               duplicates_removed_ = 0;
};

LessonInfo info() {
  return {
      "click_analytics",
      "Ad click counts: insert every click vs stream aggregation in event-time windows",
      "Writing every click to the database makes database writes per second equal clicks per "
      "second: past its capacity the queue fills, clicks wait seconds and are then refused. "
      "Counting in windows of arrival (processing) time puts clicks that arrive late - from "
      "phones that were offline, or just after a boundary - in the wrong window, and a click "
      "a client sends twice (a retry after a lost ack) is counted twice.",
      "Aggregate in the stream and write one row per (window, ad) when the window closes: "
      "writes per second fall to the ads clicked per window. Window by the click's event "
      "time; a watermark (max event time seen minus the expected out-of-orderness) closes a "
      "window, late clicks update it until the allowed lateness has passed and are dropped - "
      "and counted - after. Remember the click ids of each open window to drop repeats.",
      {"Google Ads / Facebook ad click aggregation: Kafka -> Flink (or Dataflow) -> OLAP "
       "store, with a reconciliation batch job",
       "Apache Flink: event-time tumbling windows, bounded out-of-orderness watermarks, "
       "allowedLateness and side outputs for late data",
       "Apache Beam / Google Cloud Dataflow: watermarks, triggers, allowed lateness "
       "(Akidau et al., \"The Dataflow Model\", VLDB 2015)",
       "Kafka Streams: windowed aggregations with a grace period; suppress until window close",
       "Druid / Pinot / ClickHouse: rollup ingestion (pre-aggregated rows per time bucket)"},
      {{"insert_every_click", true, "INSERT one row per click; count at query time"},
       {"processing_time", true, "count per ad in tumbling windows of arrival time"},
       {"event_time", false,
        "windows of event time, watermark, allowed lateness; late drops counted"},
       {"event_time_dedup", false, "event_time + each window drops click ids it has counted"}},
      {{"ads", ParamType::integer, 1000, "ads; a click is for ad (request key % ads)", 1, 1e5},
       {"window", ParamType::duration, "10s", "tumbling window length", 1e-3, 86400},
       {"allowed_lateness", ParamType::duration, "30s",
        "event time: a written window still takes late clicks until the watermark passes its "
        "end + this",
        0, 1e6},
       {"out_of_orderness", ParamType::duration, "1s",
        "event time: watermark = max event time seen - this", 0, 1e6},
       {"idle_timeout", ParamType::duration, "5s",
        "event time: after this long without a click the watermark follows the clock "
        "(now - out_of_orderness)",
        0, 1e6},
       {"watermark_interval", ParamType::duration, "200ms",
        "event time: how often an idle source is checked", 1e-6, 3600},
       {"delay_median", ParamType::duration, "50ms",
        "client -> collector delay of an ordinary click: median (lognormal)", 0, 3600},
       {"delay_p99", ParamType::duration, "1s", "... and its 99th percentile", 0, 3600},
       {"late_share", ParamType::real, 0.02,
        "share of clicks from offline clients, delayed uniform(0, late_max)", 0, 1},
       {"late_max", ParamType::duration, "120s", "longest delay of an offline client's click", 0,
        1e6},
       {"duplicate_share", ParamType::real, 0.05,
        "share of clicks the client sends twice (the ack was lost)", 0, 1},
       {"retry_after", ParamType::duration, "1s", "the repeat arrives this long after the click", 0,
        3600},
       {"ack_time", ParamType::duration, "2ms",
        "stream variants: a click is acknowledged once appended to the log", 0, 60},
       {"db_workers", ParamType::integer, 2, "rows the database writes at once", 1, 1e6},
       {"db_write_time", ParamType::duration, "2ms", "database time per row written", 0, 60},
       {"db_queue_limit", ParamType::integer, 2000,
        "writes waiting for the database; more are refused (a click is lost)", 0, 1e9}},
      {{"slow_db",
        "row writes take `factor` times longer for `duration` (a compaction, a noisy neighbour)",
        {{"factor", ParamType::real, 5.0, "write time multiplier", 1e-3, 1e6},
         {"duration", ParamType::duration, "10s", "how long", 0, 1e7}}},
       {"collector_outage",
        "the collector is down for `duration`: clients keep their clicks and send them all "
        "when it is back (a burst of late clicks)",
        {{"duration", ParamType::duration, "30s", "how long", 0, 1e7}}}},
      {{"click",
        "deliver one crafted click now (for crafted streams): it counts like a request's click",
        {{"ad", ParamType::integer, Value(), "the ad", 0, 1e5},
         {"event_time", ParamType::duration, Value(), "when the click happened", -1e7, 1e7},
         {"id", ParamType::integer, Value(), "click id (a repeat has the same id)", 0, 1e15},
         {"duplicate", ParamType::boolean, false,
          "a repeat of an earlier click: the true counts ignore it"}}},
       {"table", "every (window, ad) with the count the database holds and the true count", {}},
       {"state", "watermark, open windows, aggregator state bytes, database queue", {}}},
      {{"clicks", MetricSpec::Kind::counter, "click deliveries received, repeats included"},
       {"db_writes", MetricSpec::Kind::counter, "rows written by the database"},
       {"lost_clicks", MetricSpec::Kind::counter, "clicks the database refused (queue full)"},
       {"db_queue", MetricSpec::Kind::gauge, "row writes waiting for the database"},
       {"dropped_late", MetricSpec::Kind::counter, "clicks dropped beyond the allowed lateness"},
       {"duplicates_removed", MetricSpec::Kind::counter, "repeated clicks recognised and dropped"},
       {"watermark_lag_seconds", MetricSpec::Kind::gauge,
        "processing time minus the event-time watermark"}},
      {{"clicks", Unit::count, "distinct clicks received"},
       {"duplicates", Unit::count, "repeated deliveries of a click (client retries)"},
       {"db_writes", Unit::count, "rows written by the database"},
       {"db_writes_per_s", Unit::per_second,
        "row writes asked of the database per second of traffic"},
       {"lost_clicks", Unit::count, "clicks the database refused (queue full)"},
       {"misattributed", Unit::count,
        "deliveries counted in a window other than their event-time window"},
       {"late_updates", Unit::count, "clicks that rewrote an already written window"},
       {"dropped_late", Unit::count, "deliveries dropped beyond the allowed lateness"},
       {"duplicates_counted", Unit::count, "repeated deliveries counted as clicks"},
       {"duplicates_removed", Unit::count, "repeated deliveries recognised and dropped"},
       {"count_error", Unit::count,
        "sum over (window, ad) of |count in the database - true count|"},
       {"wrong_cells", Unit::count, "(window, ad) pairs whose count in the database is wrong"},
       {"state_bytes", Unit::bytes, "peak aggregator state (16 B per count, 8 B per click id)"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"insert_every_click", Variant::insert_every_click},
      {"processing_time", Variant::processing_time},
      {"event_time", Variant::event_time},
      {"event_time_dedup", Variant::event_time_dedup}};
  return std::make_unique<ClickAnalytics>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
