// News feed: users follow accounts; a few accounts (celebrities) have most of the followers.
// A post is a write by its author, a feed read is a read by the reader.
//
//   problem:  pull (fan-out on read)  -> read: for each account I follow: SELECT its recent posts
//             a read costs one query per follow: the heavy followers' reads are slow (read P99).
//   problem:  push (fan-out on write) -> post: for each follower: INSERT into their timeline
//             a read is one query, but a post costs one write per follower: a celebrity's post
//             is a write storm of millions of inserts, and every post queued behind it is late
//             (feed staleness), and the timelines store every post once per follower.
//   fix:      hybrid                  -> push for normal authors; a celebrity's posts are not
//             fanned out, readers pull them at read time:
//             read = own timeline + one query per celebrity followed.
//
// Model: `users` users; user u follows follows(u) ~ lognormal(follows_median, follows_p99)
// distinct accounts, each picked Zipf(follow_skew) by popularity rank (user 0 the most
// followed): follower counts are heavy-tailed. A user is a celebrity when they have at least
// `celebrity_followers` followers. A request's key (mod users) is the reader or the author.
// The feed database is a Server of db_workers: a read is one job of (queries x query_time), a
// post one insert (insert_time); it is acknowledged when its insert ends. The fan-out is a
// second Server of fanout_workers taking batches of fanout_batch timeline inserts (each
// insert_time). A post is visible to a follower when the batch holding it ends; its staleness
// is the time from the post to the moment 99% of its followers can see it. Storage: post_bytes
// per post plus entry_bytes per timeline entry. The workload's service time is not used.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/distribution.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Variant { pull, push, hybrid };

/// Who follows whom, in counts: what reads and posts cost.
struct User {
  std::uint32_t follows = 0;            // accounts this user follows
  std::uint32_t celebrity_follows = 0;  // of which celebrities
  std::uint32_t followers = 0;
  bool celebrity = false;
};

/// The follower graph: user u follows follows(u) distinct accounts drawn by popularity rank.
std::vector<User> build_graph(const Params& p, Rng& rng) {
  const auto users = p.integer<std::uint32_t>("users");
  const Distribution follows =
      Distribution::lognormal(p.real("follows_median"), p.real("follows_p99"));
  const KeyDistribution popularity = KeyDistribution::zipf(users, p.real("follow_skew"));
  std::vector<User> graph(users);
  std::vector<std::vector<std::uint32_t>> followees(users);
  for (std::uint32_t u = 0; u < users; ++u) {
    // At most half the other users: distinct Zipf draws then end quickly.
    const double wanted = std::min(std::round(follows.sample(rng)), (users - 1) / 2.0);
    auto& list = followees[u];
    while (list.size() < static_cast<std::size_t>(wanted)) {
      const auto v = static_cast<std::uint32_t>(popularity.sample(rng));
      if (v == u || std::find(list.begin(), list.end(), v) != list.end()) continue;
      list.push_back(v);
      ++graph[v].followers;
    }
    graph[u].follows = static_cast<std::uint32_t>(list.size());
  }
  const auto threshold = p.integer<std::uint32_t>("celebrity_followers");
  for (User& user : graph) user.celebrity = user.followers >= threshold;
  for (std::uint32_t u = 0; u < users; ++u)
    for (std::uint32_t v : followees[u]) graph[u].celebrity_follows += graph[v].celebrity;
  return graph;
}

/// A request in the feed database: a read (queries) or a post's insert.
struct Job {
  Request request;
  std::uint32_t user = 0;
};

/// A post whose fan-out is under way.
struct Post {
  Time posted = 0;
  std::uint32_t followers = 0;
  std::uint32_t to_see = 0;     // followers who must see it: ceil(0.99 x followers)
  std::uint32_t delivered = 0;  // timeline inserts done
  bool counted = false;
};

/// A batch of timeline inserts of one post.
struct Batch {
  SlotHandle post;
  std::uint32_t inserts = 0;
};

class Feed final : public System {
 public:
  Feed(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        graph_(build_graph(p, ctx.rng())),
        query_time_(p.duration("query_time")),
        insert_time_(p.duration("insert_time")),
        batch_(p.integer<std::uint32_t>("fanout_batch")),
        post_bytes_(p.integer("post_bytes")),
        entry_bytes_(p.integer("entry_bytes")),
        timeline_writes_metric_(ctx.metric("timeline_writes")),
        queries_metric_(ctx.metric("read_queries")),
        backlog_metric_(ctx.metric("fanout_backlog")),
        storage_metric_(ctx.metric("storage_bytes")),
        db_(ctx, {.workers = p.integer<int>("db_workers")}, [this](Job& job) { db_done(job); }),
        fanout_(ctx, {.workers = p.integer<int>("fanout_workers")},
                [this](Batch& b) { batch_done(b); }) {}

  void handle(const Request& r) override {
    const auto user = static_cast<std::uint32_t>(r.key % graph_.size());
    Time work = insert_time_;
    if (r.op == Op::read) {
      const std::int64_t queries = read_queries(graph_[user]);
      work = queries * query_time_;
      if (counted(r.arrival)) {
        queries_ += queries;
        queries_metric_.add(static_cast<double>(queries));
      }
    }
    db_.submit(Job{r, user}, work);
  }

  Value call(const std::string& op, const Value& args) override {
    if (op == "user") {
      const auto id = static_cast<std::size_t>(args["id"].as_int());
      if (id >= graph_.size()) throw std::invalid_argument("no user " + std::to_string(id));
      const User& u = graph_[id];
      return Map{{"follows", static_cast<std::int64_t>(u.follows)},
                 {"celebrity_follows", static_cast<std::int64_t>(u.celebrity_follows)},
                 {"followers", static_cast<std::int64_t>(u.followers)},
                 {"celebrity", u.celebrity},
                 {"read_queries", read_queries(u)},
                 {"writes_per_post", writes_per_post(u)}};
    }
    std::int64_t celebrities = 0, edges = 0, max_followers = 0;  // "graph"
    for (const User& u : graph_) {
      celebrities += u.celebrity;
      edges += u.follows;
      max_followers = std::max<std::int64_t>(max_followers, u.followers);
    }
    return Map{{"users", static_cast<std::int64_t>(graph_.size())},
               {"celebrities", celebrities},
               {"follows", edges},
               {"max_followers", max_followers}};
  }

  Map figures() const override {
    const double reads = static_cast<double>(reads_.count());
    return {{"read_p99", to_seconds(reads_.quantile(0.99))},
            {"queries_per_read", reads > 0 ? static_cast<double>(queries_) / reads : 0.0},
            {"posts", posts_},
            {"writes_per_post",
             posts_ > 0 ? static_cast<double>(writes_) / static_cast<double>(posts_) : 0.0},
            {"max_writes_per_post", max_writes_},
            {"staleness_p99", to_seconds(staleness_.quantile(0.99))},
            {"staleness_max", to_seconds(staleness_.max())},
            {"storage_bytes", storage_bytes_}};
  }

  void reset_stats() override {
    reads_.reset();
    staleness_.reset();
    queries_ = posts_ = writes_ = max_writes_ = 0;
    counting_from_ = ctx_.now();
  }

 private:
  bool counted(Time arrival) const { return arrival >= counting_from_; }
  bool fans_out(const User& author) const {
    return variant_ == Variant::push || (variant_ == Variant::hybrid && !author.celebrity);
  }
  std::int64_t read_queries(const User& reader) const {
    switch (variant_) {
      case Variant::pull:
        return std::max<std::int64_t>(1, reader.follows);  // an empty feed still asks once
      case Variant::push:
        return 1;
      case Variant::hybrid:
        return 1 + reader.celebrity_follows;
    }
    return 1;
  }
  std::int64_t writes_per_post(const User& author) const {
    return 1 + (fans_out(author) ? author.followers : 0);
  }

  void db_done(Job& job) {
    const Request& r = job.request;
    if (r.op == Op::read) {
      if (counted(r.arrival)) reads_.record(ctx_.now() - r.arrival);
      return ctx_.complete(r, Outcome::ok);
    }
    const User& author = graph_[job.user];
    const std::int64_t writes = writes_per_post(author);
    storage_bytes_ += post_bytes_ + (writes - 1) * entry_bytes_;
    storage_metric_.set(static_cast<double>(storage_bytes_));
    timeline_writes_metric_.add(static_cast<double>(writes - 1));
    const bool count = counted(r.arrival);
    if (count) {
      ++posts_;
      writes_ += writes;
      max_writes_ = std::max(max_writes_, writes);
    }
    if (writes == 1) {  // nobody to push to: visible to its readers now
      if (count) staleness_.record(ctx_.now() - r.arrival);
    } else {
      fan_out(r, author.followers, count);
    }
    ctx_.complete(r, Outcome::ok);
  }

  void fan_out(const Request& r, std::uint32_t followers, bool count) {
    const SlotHandle h = posts_in_flight_.acquire();
    posts_in_flight_[h] = Post{r.arrival, followers,
                               static_cast<std::uint32_t>(std::ceil(0.99 * followers)), 0, count};
    ctx_.hold();  // the drain waits for the fan-out
    for (std::uint32_t sent = 0; sent < followers; sent += batch_) {
      const std::uint32_t n = std::min(batch_, followers - sent);
      fanout_.submit(Batch{h, n}, n * insert_time_);
      backlog_ += n;
    }
    backlog_metric_.set(static_cast<double>(backlog_));
  }

  void batch_done(Batch& b) {
    Post& post = posts_in_flight_[b.post];
    backlog_ -= b.inserts;
    backlog_metric_.set(static_cast<double>(backlog_));
    const std::uint32_t before = post.delivered;
    post.delivered += b.inserts;
    if (post.counted && before < post.to_see && post.delivered >= post.to_see)
      staleness_.record(ctx_.now() - post.posted);
    if (post.delivered == post.followers) {
      posts_in_flight_.release(b.post);
      ctx_.release();
    }
  }

  Variant variant_;
  Context& ctx_;
  std::vector<User> graph_;
  Time query_time_, insert_time_;
  std::uint32_t batch_;
  std::int64_t post_bytes_, entry_bytes_;
  Metric& timeline_writes_metric_;
  Metric& queries_metric_;
  Metric& backlog_metric_;
  Metric& storage_metric_;
  SlotPool<Post> posts_in_flight_;
  Server<Job> db_;
  Server<Batch> fanout_;
  Time counting_from_ = 0;

  Histogram reads_;      // read latency (ns)
  Histogram staleness_;  // post -> visible to 99% of its followers (ns)
  std::int64_t queries_ = 0, posts_ = 0, writes_ = 0, max_writes_ = 0;
  std::int64_t storage_bytes_ = 0, backlog_ = 0;
};

LessonInfo info() {
  return {
      "news_feed",
      "News feed: fan-out on read is slow to read, fan-out on write storms; hybrid does neither",
      "Pull (fan-out on read): a feed read queries every account the reader follows, so heavy "
      "followers read slowly and the read P99 is high. Push (fan-out on write): a post is "
      "copied into every follower's timeline, so reads are one query but a celebrity's post is "
      "a storm of one write per follower; every post queued behind it reaches its followers "
      "late (staleness), and the timelines store each post once per follower.",
      "Hybrid: push the posts of normal accounts (few followers: a cheap fan-out), but never "
      "fan out a celebrity's post; readers pull their celebrities' posts at read time and merge "
      "them with their timeline. A read costs one query plus one per celebrity followed, a post "
      "at most `celebrity_followers` writes.",
      {"Twitter/X: home timelines pushed into Redis by fan-out services; high-follower "
       "accounts merged at read time (\"Timelines at Scale\", Raffi Krikorian, QCon 2013)",
       "Facebook News Feed: pull-based aggregation at read time over TAO/Multifeed",
       "Instagram and LinkedIn feeds: hybrid push/pull with a celebrity threshold",
       "Silberstein et al., \"Feeding Frenzy: Selectively Materializing Users' Event Feeds\" "
       "(SIGMOD 2010): push or pull per (producer, consumer) pair by their rates"},
      {{"pull", true, "fan-out on read: one query per followed account at every read"},
       {"push", true, "fan-out on write: one timeline insert per follower at every post"},
       {"hybrid", false, "push for normal accounts, pull for celebrities at read time"}},
      {{"users", ParamType::integer, 10000, "users in the follower graph", 10, 1e6},
       {"follows_median", ParamType::real, 20.0, "median accounts a user follows", 1, 1e5},
       {"follows_p99", ParamType::real, 300.0, "P99 of accounts a user follows", 1, 1e6},
       {"follow_skew", ParamType::real, 1.0,
        "Zipf exponent of the account a follow picks (by popularity rank)", 0, 5},
       {"celebrity_followers", ParamType::integer, 1000,
        "followers from which an account is a celebrity (hybrid does not fan it out)", 1, 1e9},
       {"query_time", ParamType::duration, "200us", "DB time of one timeline/posts query", 0, 60},
       {"insert_time", ParamType::duration, "50us", "DB time of one insert (post or timeline)", 0,
        60},
       {"db_workers", ParamType::integer, 16, "queries the feed DB runs at once", 1, 1e6},
       {"fanout_workers", ParamType::integer, 4, "fan-out batches processed at once", 1, 1e6},
       {"fanout_batch", ParamType::integer, 100, "timeline inserts per fan-out job", 1, 1e6},
       {"post_bytes", ParamType::integer, 1024, "bytes stored per post", 0, 1e9},
       {"entry_bytes", ParamType::integer, 16, "bytes per timeline entry (post id, time)", 0, 1e9}},
      {},
      {{"user",
        "a user's follows, celebrity_follows, followers, celebrity, and what a read and a post "
        "by them cost in this variant (read_queries, writes_per_post)",
        {{"id", ParamType::integer, 0, "user id (0 is the most followed)", 0, 1e9}}},
       {"graph", "users, celebrities, follows (edges) and max_followers", {}}},
      {{"timeline_writes", MetricSpec::Kind::counter, "timeline inserts by the fan-out"},
       {"read_queries", MetricSpec::Kind::counter, "queries run by feed reads"},
       {"fanout_backlog", MetricSpec::Kind::gauge, "timeline inserts waiting or running"},
       {"storage_bytes", MetricSpec::Kind::gauge, "posts plus timeline entries, in bytes"}},
      {{"read_p99", Unit::seconds, "P99 latency of feed reads"},
       {"queries_per_read", Unit::number, "mean DB queries per feed read"},
       {"posts", Unit::count, "posts written"},
       {"writes_per_post", Unit::number, "mean writes per post (the post + timeline inserts)"},
       {"max_writes_per_post", Unit::count, "writes of the most expensive post"},
       {"staleness_p99", Unit::seconds,
        "P99 over posts of the time until 99% of the author's followers can see it"},
       {"staleness_max", Unit::seconds, "the stalest post's time to 99% of its followers"},
       {"storage_bytes", Unit::bytes, "posts plus timeline entries stored (whole run)"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"pull", Variant::pull}, {"push", Variant::push}, {"hybrid", Variant::hybrid}};
  return std::make_unique<Feed>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
