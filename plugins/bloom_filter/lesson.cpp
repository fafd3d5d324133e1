// Bloom filter: "is this username taken?" without asking the database every time.
//
//   problem:  db_lookup      -> check(name) = SELECT 1 FROM users WHERE name = ?  (every check,
//                               most of them for free names, costs a database query)
//             exact_set      -> check(name) = names.contains(name), an in-memory copy of every
//                               name: no query, but ~40 bytes per name
//   fix:      bloom          -> if !filter.might_contain(name): free (certain, no query)
//                               else: ask the database (a false positive costs one query)
//                               m bits and k hashes for n names: wrong "maybe" with probability
//                               (1 - e^(-k n / m))^k; 9.6 bits per name for 1%, k = 7
//             counting_bloom -> 4-bit counters instead of bits: a released name is removed
//   deletes:  a plain filter cannot forget: `bloom` keeps a released name's bits (stale bits:
//             the false-positive rate creeps up until a rebuild); bloom_clear_on_delete
//             clears its k bits, which other names share: those names now read "free" (false
//             negatives, the one answer a Bloom filter must never give).
//
// Model: a request is a name check (read) or a registration / release (write, a release
// with probability delete_share). The database holds the truth (a unique index on the
// names): every write is a database write, checks go to it when the variant needs it. The
// structure's work (hashes, random memory accesses, name comparisons) is charged through the
// cost model (hash_ns, access_ns, compare_ns) on the app server (cpu_workers); a database
// statement takes db_time on one of db_workers. An operation runs on the structures when
// its request arrives; its answer leaves after the queueing and the time its work costs.
#include <cmath>
#include <memory>
#include <optional>
#include <string>

#include "bloom.hpp"
#include "hldlab/cost_model.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;
using bloom::Work;

enum class Variant { db_lookup, exact_set, bloom, bloom_clear_on_delete, counting_bloom };

/// A request on its way through the app server and maybe the database.
struct Job {
  Request request;
  Outcome outcome = Outcome::ok;
  bool needs_db = false;
};

class UsernameService final : public System {
 public:
  UsernameService(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        cost_{p.real("hash_ns"), p.real("access_ns"), p.real("compare_ns")},
        db_time_(p.duration("db_time")),
        delete_share_(p.real("delete_share")),
        delete_salt_(ctx.salt("release or register")),
        app_seed_(ctx.rng().next()),
        database_(ctx.rng().next()),
        stale_(app_seed_),
        checks_metric_(ctx.metric("checks")),
        db_lookups_metric_(ctx.metric("db_lookups")),
        false_positives_metric_(ctx.metric("false_positives")),
        false_negatives_metric_(ctx.metric("false_negatives")),
        memory_metric_(ctx.metric("memory_bytes")),
        cpu_(ctx, {.workers = p.integer<int>("cpu_workers")}, [this](Job& job) { after_cpu(job); }),
        db_(ctx, {.workers = p.integer<int>("db_workers")}, [this](Job& job) { finish(job); }) {
    const auto registered = p.integer<std::uint64_t>("registered");
    double bits_per_key = p.real("bits_per_key");
    if (bits_per_key == 0) bits_per_key = bloom::bits_per_key_for(p.real("target_fpr"));
    int hashes = p.integer<int>("hashes");
    if (hashes == 0) hashes = bloom::optimal_hashes(bits_per_key);
    const auto capacity = static_cast<double>(
        p.integer("capacity") > 0 ? p.integer<std::uint64_t>("capacity") : registered);
    const auto cells =
        static_cast<std::uint64_t>(std::ceil(std::max(1.0, capacity) * bits_per_key));
    if (variant_ == Variant::exact_set) exact_.emplace(app_seed_);
    if (variant_ == Variant::bloom || variant_ == Variant::bloom_clear_on_delete)
      filter_.emplace(cells, hashes, app_seed_);
    if (variant_ == Variant::counting_bloom) counting_.emplace(cells, hashes, app_seed_);
    Work setup;  // loading the names before the traffic costs nothing
    char buffer[16];
    for (std::uint64_t id = 0; id < registered; ++id) {
      const std::string_view name = bloom::username(id, buffer);
      database_.insert(name, setup);
      add(name, setup);
    }
    memory_metric_.set(static_cast<double>(memory_bytes()));
  }

  void handle(const Request& r) override {
    char buffer[16];
    const std::string_view name = bloom::username(r.key, buffer);
    Work work;
    Job job{r};
    if (r.op == Op::read)
      check(name, job, work);
    else
      write(name, job, work);
    cpu_.submit(job, cost_.time(work));
  }

  Value call(const std::string& op, const Value&) override {
    if (op == "rebuild") {
      if (!filter_ && !counting_)
        throw std::invalid_argument("rebuild: " + std::string(variant_name()) + " has no filter");
      Work ignored;
      if (filter_) filter_->reset();
      if (counting_) counting_->reset();
      in_filter_ = 0;
      stale_ = bloom::NameSet(app_seed_);
      database_.for_each([&](std::string_view name) { add(name, ignored); });
      ctx_.log("filter rebuilt from the database: " + std::to_string(in_filter_) + " names");
    }
    return figures();  // "stats", and the figures after a rebuild
  }

  Map figures() const override {
    const auto checks = static_cast<double>(checks_);
    Map f{{"checks", checks_},
          {"negative_checks", negative_checks_},
          {"db_lookups", db_lookups_},
          {"db_lookup_share", checks > 0 ? static_cast<double>(db_lookups_) / checks : 0.0},
          {"false_negatives", false_negatives_},
          {"memory_bytes", static_cast<std::int64_t>(memory_bytes())},
          {"bytes_per_name", static_cast<double>(memory_bytes()) /
                                 static_cast<double>(std::max<std::size_t>(1, database_.size()))},
          {"accesses_per_check", checks > 0 ? static_cast<double>(check_accesses_) / checks : 0.0},
          {"check_p99", to_seconds(check_latency_.quantile(0.99))},
          {"names", static_cast<std::int64_t>(database_.size())}};
    if (filter_ || counting_) {
      const double m = static_cast<double>(filter_ ? filter_->cells() : counting_->cells());
      const double k = filter_ ? filter_->hashes() : counting_->hashes();
      f["false_positives"] = false_positives_;
      f["false_positive_rate"] = negative_checks_ > 0 ? static_cast<double>(false_positives_) /
                                                            static_cast<double>(negative_checks_)
                                                      : 0.0;
      f["expected_fpr"] = bloom::expected_fpr(m, k, static_cast<double>(in_filter_));
      f["filter_fill"] = filter_ ? filter_->fill() : counting_->fill();
      f["filter_cells"] = static_cast<std::int64_t>(m);
      f["filter_hashes"] = static_cast<std::int64_t>(k);
      f["stale_names"] = static_cast<std::int64_t>(stale_.size());
    }
    return f;
  }

  void reset_stats() override {
    checks_ = negative_checks_ = db_lookups_ = false_positives_ = false_negatives_ = 0;
    check_accesses_ = 0;
    check_latency_.reset();
  }

 private:
  const char* variant_name() const {
    static const char* names[] = {"db_lookup", "exact_set", "bloom", "bloom_clear_on_delete",
                                  "counting_bloom"};
    return names[static_cast<int>(variant_)];
  }

  /// "Is this name taken?"
  void check(std::string_view name, Job& job, Work& work) {
    Work ignored;  // the truth, for the figures: not part of the answer's work
    const bool taken = database_.contains(name, ignored);
    ++checks_;
    checks_metric_.add(1);
    if (!taken) ++negative_checks_;
    const std::uint64_t accesses_before = work.accesses;
    bool maybe = true;                                 // db_lookup: always ask the database
    if (exact_) maybe = exact_->contains(name, work);  // exact: no database needed
    if (filter_) maybe = filter_->might_contain(name, work);
    if (counting_) maybe = counting_->might_contain(name, work);
    check_accesses_ += work.accesses - accesses_before;
    if (exact_) return;
    if (!maybe) {
      if (taken) {  // the filter forgot a name (a cleared bit): "free" is wrong
        ++false_negatives_;
        false_negatives_metric_.add(1);
      }
      return;
    }
    if (!taken && variant_ != Variant::db_lookup) {
      ++false_positives_;
      false_positives_metric_.add(1);
    }
    job.needs_db = true;
    ++db_lookups_;
    db_lookups_metric_.add(1);
  }

  /// Register a free name, or release a taken one (an account closed); the database decides
  /// (its unique index refuses a name taken twice).
  void write(std::string_view name, Job& job, Work& work) {
    Work ignored;
    job.needs_db = true;
    const double u = static_cast<double>(Rng::hash(job.request.id ^ delete_salt_) >> 11) * 0x1p-53;
    if (u < delete_share_) {
      if (!database_.erase(name, ignored)) {
        job.outcome = Outcome::rejected;  // nobody has this name
        return;
      }
      if (exact_) exact_->erase(name, work);
      if (filter_ && variant_ == Variant::bloom_clear_on_delete) {
        filter_->clear(name, work);
        --in_filter_;
      }
      if (filter_ && variant_ == Variant::bloom) stale_.insert(name, ignored);  // bits stay
      if (counting_) {
        counting_->remove(name, work);
        --in_filter_;
      }
    } else {
      if (!database_.insert(name, ignored)) {
        job.outcome = Outcome::rejected;  // taken
        return;
      }
      if (stale_.erase(name, ignored)) {  // plain bloom: its bits are still set
        filter_->add(name, work);
      } else {
        add(name, work);
      }
    }
    memory_metric_.set(static_cast<double>(memory_bytes()));
  }

  void add(std::string_view name, Work& work) {
    if (exact_) exact_->insert(name, work);
    if (filter_) filter_->add(name, work);
    if (counting_) counting_->add(name, work);
    ++in_filter_;
  }

  void after_cpu(Job& job) {
    if (job.needs_db) {
      db_.submit(job, db_time_);
      return;
    }
    finish(job);
  }

  void finish(const Job& job) {
    if (job.request.op == Op::read) check_latency_.record(ctx_.now() - job.request.arrival);
    ctx_.complete(job.request, job.outcome);
  }

  std::size_t memory_bytes() const {
    if (exact_) return exact_->memory_bytes();
    if (filter_) return filter_->memory_bytes();
    if (counting_) return counting_->memory_bytes();
    return 0;  // db_lookup keeps nothing in the app
  }

  Variant variant_;
  Context& ctx_;
  CostModel cost_;
  Time db_time_;
  double delete_share_;
  std::uint64_t delete_salt_, app_seed_;
  bloom::NameSet database_;  // the truth: the database's unique index
  std::optional<bloom::NameSet> exact_;
  std::optional<bloom::BloomFilter> filter_;
  std::optional<bloom::CountingBloomFilter> counting_;
  std::int64_t in_filter_ = 0;  // names the filter holds (plain bloom: released ones too)
  bloom::NameSet stale_;        // plain bloom: released names whose bits are still set
  Metric& checks_metric_;
  Metric& db_lookups_metric_;
  Metric& false_positives_metric_;
  Metric& false_negatives_metric_;
  Metric& memory_metric_;
  Server<Job> cpu_;
  Server<Job> db_;
  Histogram check_latency_;
  std::int64_t checks_ = 0, negative_checks_ = 0, db_lookups_ = 0, false_positives_ = 0,
               false_negatives_ = 0;
  std::uint64_t check_accesses_ = 0;
};

LessonInfo info() {
  return {
      "bloom_filter",
      "Bloom filter: \"is this username taken?\" without a database query per check",
      "Every sign-up form checks names as the user types. Asking the database each time costs "
      "a query per check, most of them for names nobody has; keeping an exact copy of every "
      "name in the app costs tens of bytes per name. A plain Bloom filter cannot delete: "
      "clearing a released name's bits erases other names too (false negatives).",
      "A Bloom filter of the taken names answers \"free\" for certain without a query and "
      "sends only \"maybe\" to the database: with 9.6 bits per name and 7 hashes, 1% of the free "
      "names cost a query. A counting Bloom filter (4-bit counters) supports deletes.",
      {"Instagram, Medium, Quora: Bloom filters to skip lookups (usernames, seen posts)",
       "Cassandra, HBase, RocksDB, LevelDB: a Bloom filter per SSTable skips disk reads",
       "Redis Stack (RedisBloom): BF.ADD / BF.EXISTS, CF (cuckoo) for deletes",
       "Chrome's former Safe Browsing client, Akamai (one-hit-wonder filtering)",
       "B. H. Bloom, \"Space/time trade-offs in hash coding with allowable errors\", 1970; "
       "L. Fan et al., \"Summary Cache\" (counting Bloom filters), 2000"},
      {{"db_lookup", true, "every check queries the database"},
       {"exact_set", true, "an exact in-memory set of every name: no query, much memory"},
       {"bloom", false, "Bloom filter; \"maybe\" asks the database; deletes leave stale bits"},
       {"bloom_clear_on_delete", true,
        "Bloom filter that clears a released name's bits: false negatives"},
       {"counting_bloom", false, "counting Bloom filter (4-bit counters): deletes work"}},
      {{"registered", ParamType::integer, 100000,
        "names taken at the start: name ids 0..registered-1 (the popular ones under Zipf keys)", 0,
        1e8},
       {"target_fpr", ParamType::real, 0.01,
        "false-positive rate the filter is sized for (bits per name = -ln p / ln^2 2)", 1e-9, 0.5},
       {"bits_per_key", ParamType::real, 0.0, "bits (counters) per name; 0: from target_fpr", 0,
        1000},
       {"hashes", ParamType::integer, 0, "k; 0: the optimal (bits per name) x ln 2", 0, 64},
       {"capacity", ParamType::integer, 0,
        "names the filter is sized for (m = capacity x bits per name); 0: registered", 0, 1e9},
       {"delete_share", ParamType::real, 0.5,
        "share of the writes that release a name (the others register one)", 0, 1},
       {"db_time", ParamType::duration, "1ms", "time of one database statement", 0, 60},
       {"db_workers", ParamType::integer, 8, "statements the database runs at once", 1, 1e6},
       {"cpu_workers", ParamType::integer, 1, "requests the app server works on at once", 1, 1e6},
       {"hash_ns", ParamType::real, 20.0, "cost model: ns to hash a name", 0, 1e9},
       {"access_ns", ParamType::real, 50.0,
        "cost model: ns per random memory access (a bit or counter probe, a cache line of "
        "slots)",
        0, 1e9},
       {"compare_ns", ParamType::real, 5.0, "cost model: ns per name comparison", 0, 1e9}},
      {},
      {{"stats", "the figures now", {}},
       {"rebuild",
        "rebuild the filter from the database's names (clears stale bits); returns the figures",
        {}}},
      {{"checks", MetricSpec::Kind::counter, "name checks (\"is it taken?\")"},
       {"db_lookups", MetricSpec::Kind::counter, "database queries made by checks"},
       {"false_positives", MetricSpec::Kind::counter,
        "checks of free names the filter answered \"maybe\" (a wasted query)"},
       {"false_negatives", MetricSpec::Kind::counter,
        "checks of taken names answered \"free\" (a cleared bit)"},
       {"memory_bytes", MetricSpec::Kind::gauge, "bytes of the in-app structure"}},
      {{"checks", Unit::count, "name checks (reads)"},
       {"negative_checks", Unit::count, "checks of names nobody has"},
       {"db_lookups", Unit::count, "database queries made by checks"},
       {"db_lookup_share", Unit::fraction, "db_lookups / checks"},
       {"false_positives", Unit::count, "checks of free names the filter answered \"maybe\""},
       {"false_positive_rate", Unit::fraction, "false_positives / negative_checks"},
       {"expected_fpr", Unit::fraction,
        "(1 - e^(-k n / m))^k for the names in the filter now (plain bloom: stale ones too)"},
       {"false_negatives", Unit::count, "checks of taken names answered \"free\""},
       {"memory_bytes", Unit::bytes, "bytes of the in-app structure (0 for db_lookup)"},
       {"bytes_per_name", Unit::number, "memory_bytes / names in the database"},
       {"accesses_per_check", Unit::number, "random memory accesses per check"},
       {"check_p99", Unit::seconds, "99th percentile latency of the checks"},
       {"names", Unit::count, "names in the database now"},
       {"filter_fill", Unit::fraction, "share of the filter's bits (counters) that are set"},
       {"filter_cells", Unit::count, "m: bits (counters) of the filter"},
       {"filter_hashes", Unit::count, "k: positions per name"},
       {"stale_names", Unit::count, "released names whose bits a plain filter still holds"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"db_lookup", Variant::db_lookup},
      {"exact_set", Variant::exact_set},
      {"bloom", Variant::bloom},
      {"bloom_clear_on_delete", Variant::bloom_clear_on_delete},
      {"counting_bloom", Variant::counting_bloom}};
  return std::make_unique<UsernameService>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
