// Leaderboard: "what is my rank?" and "who is on top?" among many players.
//
//   problem:  table_scan -> scores in a table without an index on the score:
//                             rank(p)  = SELECT COUNT(*) + 1 WHERE (score, tie) ranks before p's
//                             top(k)   = ORDER BY score DESC LIMIT k
//                           both read every row: O(n) per query (n = players), so the query
//                           rate a server sustains falls as 1/n. An update writes one row.
//   fix:      skip_list  -> a sorted set (Redis ZADD / ZREVRANK / ZREVRANGE): a skip list
//                           whose links carry spans (how many entries they skip), so the walk
//                           down to a player adds up its rank: O(log n) node visits for a
//                           rank, an update (erase + insert) or the start of a top-k page.
//   ties:     equal scores are ordered by who reached the score first (`first_reached`, a
//             sequence number per update), by player id (`player_id`, like Redis's member
//             order), or share a rank (`shared`: 1 + the players with a strictly higher
//             score, "1224" ranking). Both variants order the same way: same answers.
//
// Model: a write adds 1..max_gain points to player key % players (the same gain in every
// variant); a read asks for that player's rank, or (top_share of reads) for the top k. The
// structure's work (rows scanned, nodes visited, comparisons) is charged through the cost
// model (row_ns, access_ns, compare_ns) on one server (cpu_workers). An operation runs when
// its request arrives; its answer leaves after the queueing and the time its work costs.
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "ranking.hpp"

namespace {
using namespace hldlab;
using ranking::Entry;
using ranking::Work;

enum class Variant { table_scan, skip_list };
enum class Ties { first_reached, player_id, shared };
enum class Kind : std::uint8_t { update, rank, top };

/// What the structure's work costs in time.
struct CostModel {
  double row_ns, access_ns, compare_ns;
  Time time(const Work& w) const {
    return round_time(static_cast<double>(w.rows) * row_ns +
                      static_cast<double>(w.nodes) * access_ns +
                      static_cast<double>(w.compares) * compare_ns);
  }
};

/// Per kind of operation: how many, their work, their latency.
struct OpStats {
  std::int64_t count = 0;
  Work work;
  Histogram latency;
  void reset() {
    count = 0;
    work = {};
    latency.reset();
  }
};

struct Job {
  Request request;
  Kind kind = Kind::rank;
};

class Leaderboard final : public System {
 public:
  Leaderboard(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        cost_{p.real("row_ns"), p.real("access_ns"), p.real("compare_ns")},
        players_(p.integer<std::uint32_t>("players")),
        max_gain_(p.integer<std::uint64_t>("max_gain")),
        top_share_(p.real("top_share")),
        k_(p.integer<std::size_t>("k")),
        gain_salt_(ctx.salt("points of an update")),
        query_salt_(ctx.salt("rank or top-k query")),
        updates_metric_(ctx.metric("updates")),
        queries_metric_(ctx.metric("queries")),
        work_metric_(ctx.metric("query_work")),
        cpu_(ctx, {.workers = p.integer<int>("cpu_workers")}, [this](Job& job) { finish(job); }) {
    const std::string& ties = p.string("ties");
    ties_ = ties == "player_id" ? Ties::player_id
            : ties == "shared"  ? Ties::shared
                                : Ties::first_reached;
    const auto range = p.integer<std::uint64_t>("score_range");
    // The initial scores and the skip list's node levels come from the lesson's stream: the
    // same in every variant.
    const std::uint64_t level_seed = ctx.rng().next();
    if (variant_ == Variant::table_scan)
      table_.emplace(players_);
    else
      list_.emplace(players_, level_seed);
    Work setup;  // loading the players before the traffic costs nothing
    for (std::uint32_t player = 0; player < players_; ++player) {
      const Entry e{static_cast<std::int64_t>(ctx.rng().below(range)), 0, player};
      if (table_) table_->set(e, setup);
      if (list_) list_->insert(e, setup);
    }
  }

  void handle(const Request& r) override {
    Job job{r};
    const auto player = static_cast<std::uint32_t>(r.key % players_);
    Work work;
    if (r.op == Op::write) {
      job.kind = Kind::update;
      const auto gain = static_cast<std::int64_t>(1 + Rng::hash(r.id ^ gain_salt_) % max_gain_);
      set_score(player, entry(player).score + gain, work);
      updates_metric_.add(1);
    } else {
      const double u = static_cast<double>(Rng::hash(r.id ^ query_salt_) >> 11) * 0x1p-53;
      job.kind = u < top_share_ ? Kind::top : Kind::rank;
      if (job.kind == Kind::top)
        top(k_, top_, work);
      else
        rank(player, work);
      queries_metric_.add(1);
      work_metric_.add(static_cast<double>(work.rows + work.nodes));
    }
    OpStats& s = stats_[static_cast<int>(job.kind)];
    ++s.count;
    s.work.rows += work.rows;
    s.work.nodes += work.nodes;
    s.work.compares += work.compares;
    cpu_.submit(job, cost_.time(work));
  }

  Value call(const std::string& op, const Value& args) override {
    Work ignored;  // operations from the script are outside the traffic
    if (op == "set_score") {
      const std::uint32_t player = player_arg(args);
      set_score(player, args["score"].as_int(), ignored);
      return Value();
    }
    if (op == "rank") {
      const std::uint32_t player = player_arg(args);
      const std::uint64_t r = rank(player, ignored);
      return Map{{"rank", static_cast<std::int64_t>(r)},
                 {"score", entry(player).score},
                 {"nodes", static_cast<std::int64_t>(ignored.nodes)},
                 {"rows", static_cast<std::int64_t>(ignored.rows)},
                 {"compares", static_cast<std::int64_t>(ignored.compares)}};
    }
    std::vector<Entry> best;  // "top"
    top(static_cast<std::size_t>(args.int_or("k", static_cast<std::int64_t>(k_))), best, ignored);
    List out;
    std::int64_t shown_rank = 0;
    for (std::size_t i = 0; i < best.size(); ++i) {
      if (ties_ != Ties::shared || i == 0 || best[i].score != best[i - 1].score)
        shown_rank = static_cast<std::int64_t>(i) + 1;
      out.push_back(Map{{"player", static_cast<std::int64_t>(best[i].player)},
                        {"score", best[i].score},
                        {"rank", shown_rank}});
    }
    return out;
  }

  Map figures() const override {
    const OpStats &updates = stats_[0], &ranks = stats_[1], &tops = stats_[2];
    auto per = [](std::uint64_t total, std::int64_t count) {
      return count > 0 ? static_cast<double>(total) / static_cast<double>(count) : 0.0;
    };
    return {
        {"players", static_cast<std::int64_t>(players_)},
        {"updates", updates.count},
        {"rank_queries", ranks.count},
        {"top_queries", tops.count},
        {"rows_per_rank", per(ranks.work.rows, ranks.count)},
        {"nodes_per_rank", per(ranks.work.nodes, ranks.count)},
        {"compares_per_rank", per(ranks.work.compares, ranks.count)},
        {"compares_per_top", per(tops.work.compares, tops.count)},
        {"nodes_per_update", per(updates.work.nodes, updates.count)},
        {"compares_per_update", per(updates.work.compares, updates.count)},
        {"rank_p99", to_seconds(ranks.latency.quantile(0.99))},
        {"top_p99", to_seconds(tops.latency.quantile(0.99))},
        {"update_p99", to_seconds(updates.latency.quantile(0.99))},
        {"memory_bytes", static_cast<std::int64_t>(memory_bytes())},
        {"bytes_per_player", static_cast<double>(memory_bytes()) / static_cast<double>(players_)}};
  }

  void reset_stats() override {
    for (OpStats& s : stats_) s.reset();
  }

 private:
  std::uint32_t player_arg(const Value& args) const {
    const std::int64_t p = args["player"].as_int();
    if (p < 0 || p >= static_cast<std::int64_t>(players_))
      throw std::invalid_argument("no player " + std::to_string(p) + " (players 0.." +
                                  std::to_string(players_ - 1) + ")");
    return static_cast<std::uint32_t>(p);
  }

  const Entry& entry(std::uint32_t player) const {
    return table_ ? table_->entry(player) : list_->entry(player);
  }

  void set_score(std::uint32_t player, std::int64_t score, Work& work) {
    // Under first_reached the tie-break is the update's sequence number: who got there first
    // ranks first. Otherwise ties go by player id (shared ranks are computed on read).
    const Entry e{score, ties_ == Ties::first_reached ? ++sequence_ : 0, player};
    if (table_) table_->set(e, work);
    if (list_) {
      list_->erase(player, work);
      list_->insert(e, work);
    }
  }

  std::uint64_t rank(std::uint32_t player, Work& work) const {
    if (ties_ == Ties::shared) {
      const std::int64_t score = entry(player).score;
      return 1 + (table_ ? table_->count_above(score, work) : list_->count_above(score, work));
    }
    return table_ ? table_->rank(player, work) : list_->rank(player, work);
  }

  void top(std::size_t k, std::vector<Entry>& out, Work& work) const {
    if (table_)
      table_->top(k, out, work);
    else
      list_->top(k, out, work);
  }

  void finish(const Job& job) {
    stats_[static_cast<int>(job.kind)].latency.record(ctx_.now() - job.request.arrival);
    ctx_.complete(job.request, Outcome::ok);
  }

  std::size_t memory_bytes() const {
    return table_ ? table_->memory_bytes() : list_->memory_bytes();
  }

  Variant variant_;
  Context& ctx_;
  CostModel cost_;
  std::uint32_t players_;
  std::uint64_t max_gain_;
  double top_share_;
  std::size_t k_;
  Ties ties_ = Ties::first_reached;
  std::uint64_t gain_salt_, query_salt_;
  std::uint64_t sequence_ = 0;  // updates so far: the tie-break of first_reached
  std::optional<ranking::ScoreTable> table_;
  std::optional<ranking::SkipList> list_;
  std::vector<Entry> top_;  // the last top-k answer (reused)
  Metric& updates_metric_;
  Metric& queries_metric_;
  Metric& work_metric_;
  Server<Job> cpu_;
  OpStats stats_[3];  // by Kind
};

LessonInfo info() {
  return {
      "leaderboard",
      "Leaderboard: ranks in O(log n) with a sorted set (skip list) instead of ORDER BY",
      "Scores in a table without an index on the score: every \"what is my rank?\" counts the "
      "players ahead (a full scan) and every \"top 10\" sorts them, O(n) per query. At a "
      "million players each query reads a million rows, and the server's query rate falls "
      "as 1/n: under load the rank queries queue and their P99 explodes.",
      "A sorted set: a skip list whose links carry spans (the entries they skip), as in Redis's "
      "ZADD / ZREVRANK / ZREVRANGE. Walking down to a player adds up its rank in O(log n) node "
      "visits; a score update is an erase and an insert, O(log n); the top k are the first k "
      "nodes. Ties are ordered explicitly: who reached the score first, or player id, or a "
      "shared rank.",
      {"Redis sorted sets (ZADD, ZINCRBY, ZREVRANK, ZREVRANGE): skip list + hash table",
       "Game leaderboards (AWS GameLift / ElastiCache for Redis leaderboard patterns)",
       "LevelDB and RocksDB memtables, Apache Lucene (skip lists)",
       "W. Pugh, \"Skip lists: a probabilistic alternative to balanced trees\", 1990"},
      {{"table_scan", true, "no index on the score: rank and top k scan every row, O(n)"},
       {"skip_list", false, "sorted set: skip list with spans, O(log n) ranks and updates"}},
      {{"players", ParamType::integer, 10000, "players 0..n-1; a request is for key % n", 1, 1e7},
       {"score_range", ParamType::integer, 1000,
        "initial scores are uniform in [0, score_range) (fewer values, more ties)", 1, 1e15},
       {"max_gain", ParamType::integer, 100, "an update adds 1..max_gain points", 1, 1e12},
       {"top_share", ParamType::real, 0.1,
        "share of the reads that ask for the top k (the others ask a player's rank)", 0, 1},
       {"k", ParamType::integer, 10, "entries of a top-k query", 1, 1e6},
       {"ties",
        ParamType::string,
        "first_reached",
        "order of equal scores: first_reached, player_id, or shared ranks",
        -1e300,
        1e300,
        {"first_reached", "player_id", "shared"}},
       {"cpu_workers", ParamType::integer, 1, "queries the server works on at once", 1, 1e6},
       {"row_ns", ParamType::real, 40.0, "cost model: ns to read one row in a table scan", 0, 1e9},
       {"access_ns", ParamType::real, 50.0,
        "cost model: ns per node visited (a random memory access)", 0, 1e9},
       {"compare_ns", ParamType::real, 5.0, "cost model: ns per comparison of two entries", 0,
        1e9}},
      {},
      {{"rank",
        "a player's rank now: rank, score, and the work (nodes, rows, compares)",
        {{"player", ParamType::integer, Value(), "player id", 0, 1e7}}},
       {"top",
        "the top k now: a list of {player, score, rank}",
        {{"k", ParamType::integer, 10, "entries", 1, 1e6}}},
       {"set_score",
        "set a player's score (an update)",
        {{"player", ParamType::integer, Value(), "player id", 0, 1e7},
         {"score", ParamType::integer, Value(), "the new score", -9e18, 9e18}}}},
      {{"updates", MetricSpec::Kind::counter, "score updates"},
       {"queries", MetricSpec::Kind::counter, "rank and top-k queries"},
       {"query_work", MetricSpec::Kind::counter,
        "rows read and nodes visited by the queries (their work)"}},
      {{"players", Unit::count, "players on the board"},
       {"updates", Unit::count, "score updates (writes)"},
       {"rank_queries", Unit::count, "\"what is my rank?\" queries"},
       {"top_queries", Unit::count, "top-k queries"},
       {"rows_per_rank", Unit::number, "rows read per rank query"},
       {"nodes_per_rank", Unit::number, "nodes visited per rank query"},
       {"compares_per_rank", Unit::number, "comparisons per rank query"},
       {"compares_per_top", Unit::number, "comparisons per top-k query"},
       {"nodes_per_update", Unit::number, "nodes visited per update (erase + insert)"},
       {"compares_per_update", Unit::number, "comparisons per update"},
       {"rank_p99", Unit::seconds, "99th percentile latency of the rank queries"},
       {"top_p99", Unit::seconds, "99th percentile latency of the top-k queries"},
       {"update_p99", Unit::seconds, "99th percentile latency of the updates"},
       {"memory_bytes", Unit::bytes, "bytes of the structure"},
       {"bytes_per_player", Unit::number, "memory_bytes / players"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {{"table_scan", Variant::table_scan},
                                                             {"skip_list", Variant::skip_list}};
  return std::make_unique<Leaderboard>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
