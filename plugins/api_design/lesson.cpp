// API design: what a screen costs in round trips, bytes and database queries; how pages are cut.
//
//   problem:  a mobile screen shows a user, 20 posts and each post's author (100 ms round trip)
//             REST:  GET /users/u, GET /users/u/posts, then GET /users/a for each post: 22
//                    round trips one after the other, each returning the whole resource
//                    (over-fetching: the screen needs a few fields)
//             GraphQL with naive resolvers: one round trip, but the server resolves each
//                    post's author with its own query: 1 + 1 + 20 database queries (N + 1)
//             offset pagination: page k scans k * size rows it throws away, and rows inserted
//                    (or deleted) between two pages shift the window: duplicates (or misses)
//   fixes:    GraphQL + DataLoader: the authors of a level are loaded in one batched query (3)
//             a composite (backend-for-frontend) endpoint: one round trip, one join, exactly the
//                    fields of the screen
//             keyset (cursor) pagination: WHERE id < last_seen ORDER BY id DESC LIMIT size: a
//                    seek in the index and size rows, whatever the depth; nothing shifts
//
// Bytes are real: resources are serialised to JSON by the plugin (whole resources for REST,
// the screen's fields for the others). Cost model: screen time = round trips x rtt + database
// levels x db_time + bytes / bandwidth.
#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Api { rest, graphql, graphql_dataloader, composite };

/// A minimal JSON writer: objects of string and integer fields, nested by hand.
class Json {
 public:
  Json& open() { return raw("{"); }
  Json& close() {
    first_ = false;
    out_ += '}';
    return *this;
  }
  Json& key(const char* k) {
    if (!first_) out_ += ',';
    first_ = true;
    out_ += '"';
    out_ += k;
    out_ += "\":";
    return *this;
  }
  Json& field(const char* k, const std::string& v) {
    key(k);
    out_ += '"';
    for (char c : v) {
      if (c == '"' || c == '\\') out_ += '\\';
      out_ += c;
    }
    out_ += '"';
    first_ = false;
    return *this;
  }
  Json& field(const char* k, std::int64_t v) {
    key(k);
    out_ += std::to_string(v);
    first_ = false;
    return *this;
  }
  Json& raw(const char* s) {
    if (!first_ && *s == '{') out_ += ',';
    out_ += s;
    first_ = true;
    return *this;
  }
  const std::string& str() const { return out_; }

 private:
  std::string out_;
  bool first_ = true;
};

/// Deterministic content of the social network.
struct User {
  std::int64_t id;
  std::string name, handle, bio, avatar, location, website, created;
  std::int64_t followers;
};
struct Post {
  std::int64_t id, author;
  std::string title, body, created;
  std::int64_t likes;
};

std::string words(std::uint64_t seed, int count) {
  static const char* const kWords[] = {"system",  "design",  "cache", "queue", "shard",
                                       "replica", "latency", "edge",  "index", "stream"};
  std::string s;
  for (int i = 0; i < count; ++i) {
    if (i) s += ' ';
    s += kWords[Rng::hash(seed + static_cast<std::uint64_t>(i)) % 10];
  }
  return s;
}

User user(std::int64_t id) {
  const auto u = static_cast<std::uint64_t>(id);
  return {id,
          "User " + std::to_string(id),
          "@user" + std::to_string(id),
          words(u * 7919, 25),
          "https://cdn.example.com/avatars/" + std::to_string(id) + ".jpg",
          "City " + std::to_string(id % 100),
          "https://user" + std::to_string(id) + ".example.com",
          "2024-01-" + std::to_string(10 + id % 18) + "T12:00:00Z",
          static_cast<std::int64_t>(Rng::hash(u) % 100000)};
}

/// Full resource, as GET /users/:id returns it.
void write_user(Json& j, const User& u) {
  j.open()
      .field("id", u.id)
      .field("name", u.name)
      .field("handle", u.handle)
      .field("bio", u.bio)
      .field("avatar_url", u.avatar)
      .field("location", u.location)
      .field("website", u.website)
      .field("followers", u.followers)
      .field("created_at", u.created)
      .close();
}

void write_post(Json& j, const Post& p) {
  j.open()
      .field("id", p.id)
      .field("author_id", p.author)
      .field("title", p.title)
      .field("body", p.body)
      .field("likes", p.likes)
      .field("created_at", p.created)
      .close();
}

class ApiSystem final : public System {
 public:
  ApiSystem(Api api, const Params& p, Context& ctx)
      : api_(api),
        ctx_(ctx),
        users_(p.integer("users")),
        posts_(p.integer<int>("posts")),
        rtt_(p.duration("rtt")),
        db_time_(p.duration("db_time")),
        bandwidth_(p.real("bandwidth")),
        query_metric_(ctx.metric("db_queries")),
        trip_metric_(ctx.metric("round_trips")) {}

  void handle(const Request& r) override {
    const Screen s = render(static_cast<std::int64_t>(r.key % static_cast<std::uint64_t>(users_)));
    ++screens_;
    round_trips_ += s.round_trips;
    db_queries_ += s.db_queries;
    bytes_ += s.bytes;
    needed_bytes_ += s.needed;
    query_metric_.add(static_cast<double>(s.db_queries));
    trip_metric_.add(static_cast<double>(s.round_trips));
    const Time t = s.round_trips * rtt_ + s.db_levels * db_time_ +
                   round_time(static_cast<double>(s.bytes) / bandwidth_ * 1e9);
    const SlotHandle h = in_flight_.acquire();
    in_flight_[h] = r;
    ctx_.after(t, [this, h] {
      ctx_.complete(in_flight_[h], Outcome::ok);
      in_flight_.release(h);
    });
  }

  Value call(const std::string& op, const Value& args) override {
    if (op != "paginate") return System::call(op, args);
    const Map& a = args.as_map();
    return paginate(a.at("mode").as_string() == "keyset", a.at("rows").as_int(),
                    a.at("page_size").as_int(), a.at("pages").as_int(),
                    a.at("inserts_per_page").as_int(), a.at("deletes_per_page").as_int());
  }

  Map figures() const override {
    const double n = screens_ ? static_cast<double>(screens_) : 1.0;
    return {{"round_trips", static_cast<double>(round_trips_) / n},
            {"db_queries", static_cast<double>(db_queries_) / n},
            {"response_bytes", static_cast<double>(bytes_) / n},
            {"overfetched_bytes", static_cast<double>(bytes_ - needed_bytes_) / n}};
  }

  void reset_stats() override {
    screens_ = round_trips_ = db_queries_ = bytes_ = needed_bytes_ = 0;
  }

 private:
  struct Screen {
    std::int64_t round_trips = 0, db_queries = 0, db_levels = 0, bytes = 0, needed = 0;
  };

  /// The timeline of user u: `posts` posts, each by some author.
  std::vector<Post> timeline(std::int64_t u) const {
    std::vector<Post> out;
    for (int i = 0; i < posts_; ++i) {
      const std::uint64_t h =
          Rng::hash(static_cast<std::uint64_t>(u) * 1000003 + static_cast<std::uint64_t>(i));
      const std::int64_t id = u * 1000 + i;
      out.push_back({id, static_cast<std::int64_t>(h % static_cast<std::uint64_t>(users_)),
                     words(h, 8), words(h >> 8, 90), "2025-06-01T08:00:00Z",
                     static_cast<std::int64_t>(h % 5000)});
    }
    return out;
  }

  /// Bytes of GET /users/:id (memoised: the content never changes).
  std::int64_t user_bytes(std::int64_t id) {
    auto it = user_bytes_.find(id);
    if (it != user_bytes_.end()) return it->second;
    Json j;
    write_user(j, user(id));
    return user_bytes_[id] = static_cast<std::int64_t>(j.str().size());
  }

  /// The responses for the screen of user u, sized by serialising them (memoised per user).
  Screen render(std::int64_t u) {
    auto it = screens_by_user_.find(u);
    if (it != screens_by_user_.end()) return with_costs(it->second);
    const std::vector<Post> posts = timeline(u);
    Sizes s;
    // REST: the user, the list of posts, then each author, all whole resources.
    s.rest = user_bytes(u);
    Json list;
    list.raw("[");
    for (const Post& p : posts) write_post(list, p);
    s.rest += static_cast<std::int64_t>(list.str().size()) + 1;  // "]"
    for (const Post& p : posts) s.rest += user_bytes(p.author);
    // The screen's fields only: what GraphQL and the composite endpoint send.
    const User me = user(u);
    Json screen;
    screen.open()
        .key("data")
        .open()
        .key("user")
        .open()
        .field("name", me.name)
        .field("avatar_url", me.avatar);
    screen.key("posts").raw("[");
    for (const Post& p : posts) {
      const User a = user(p.author);
      screen.open().field("title", p.title).field("likes", p.likes);
      screen.key("author").open().field("name", a.name).field("avatar_url", a.avatar).close();
      screen.close();
    }
    screen.raw("]").close().close().close();
    s.needed = static_cast<std::int64_t>(screen.str().size());
    std::vector<std::int64_t> authors;
    for (const Post& p : posts) authors.push_back(p.author);
    std::sort(authors.begin(), authors.end());
    s.distinct_authors = std::unique(authors.begin(), authors.end()) - authors.begin();
    screens_by_user_[u] = s;
    return with_costs(s);
  }

  struct Sizes {
    std::int64_t rest = 0, needed = 0, distinct_authors = 0;
  };

  Screen with_costs(const Sizes& s) const {
    Screen c;
    c.needed = s.needed;
    switch (api_) {
      case Api::rest:  // one query per request, requests one after the other
        c.round_trips = 2 + posts_;
        c.db_queries = 2 + posts_;
        c.db_levels = 2 + posts_;
        c.bytes = s.rest;
        break;
      case Api::graphql:  // user, posts, then one query per post's author (in parallel)
        c.round_trips = 1;
        c.db_queries = 2 + posts_;
        c.db_levels = posts_ > 0 ? 3 : 2;
        c.bytes = s.needed;
        break;
      case Api::graphql_dataloader:  // the authors' ids batched: WHERE id IN (...)
        c.round_trips = 1;
        c.db_queries = posts_ > 0 ? 3 : 2;
        c.db_levels = c.db_queries;
        c.bytes = s.needed;
        break;
      case Api::composite:  // the user, then posts JOIN users
        c.round_trips = 1;
        c.db_queries = 2;
        c.db_levels = 2;
        c.bytes = s.needed;
        break;
    }
    return c;
  }

  /// Walk `pages` pages of a feed of `rows` rows (newest first); before each page after the
  /// first, `inserts` new rows arrive at the top and the `deletes` newest rows already returned
  /// are deleted. Counts rows scanned, index comparisons, duplicates and misses.
  static Value paginate(bool keyset, std::int64_t rows, std::int64_t size, std::int64_t pages,
                        std::int64_t inserts, std::int64_t deletes) {
    std::vector<std::int64_t> feed;  // ids, descending
    for (std::int64_t id = rows; id >= 1; --id) feed.push_back(id);
    std::int64_t next_id = rows + 1, scanned = 0, comparisons = 0, duplicates = 0;
    std::int64_t last_scanned = 0, last_comparisons = 0;
    std::vector<std::int64_t> returned;
    std::unordered_map<std::int64_t, int> seen;
    std::int64_t cursor = -1;  // keyset: the last id returned
    for (std::int64_t page = 0; page < pages; ++page) {
      if (page > 0) {
        for (std::int64_t i = 0; i < inserts; ++i) feed.insert(feed.begin(), next_id++);
        for (std::int64_t i = 0; i < deletes && !returned.empty(); ++i) {
          // Delete the newest row already returned that is still there.
          for (std::int64_t id : returned) {
            auto it = std::find(feed.begin(), feed.end(), id);
            if (it != feed.end()) {
              feed.erase(it);
              break;
            }
          }
        }
      }
      std::size_t start;
      if (keyset) {
        // Seek: binary search for the first id < cursor in the descending index.
        std::size_t lo = 0, hi = feed.size();
        last_comparisons = 0;
        if (cursor >= 0) {
          while (lo < hi) {
            const std::size_t mid = (lo + hi) / 2;
            ++last_comparisons;
            if (feed[mid] >= cursor)
              lo = mid + 1;
            else
              hi = mid;
          }
        }
        start = cursor >= 0 ? lo : 0;
        comparisons += last_comparisons;
        last_scanned = 0;
      } else {
        start = static_cast<std::size_t>(page * size);  // OFFSET: read and thrown away
        last_scanned = static_cast<std::int64_t>(std::min(start, feed.size()));
      }
      const std::size_t end = std::min(feed.size(), start + static_cast<std::size_t>(size));
      for (std::size_t i = start; i < end; ++i) {
        if (seen[feed[i]]++ > 0) ++duplicates;
        returned.push_back(feed[i]);
      }
      last_scanned += static_cast<std::int64_t>(end - std::min(start, end));
      scanned += last_scanned;
      if (end > start) cursor = feed[end - 1];
    }
    // Misses: rows of the original feed that were never deleted, lie above the last row
    // returned, and were never returned.
    std::int64_t misses = 0;
    for (std::int64_t id : feed)
      if (id <= rows && id >= cursor && !seen.count(id)) ++misses;
    return Map{{"rows_scanned", scanned},
               {"last_page_rows_scanned", last_scanned},
               {"comparisons", comparisons},
               {"last_page_comparisons", last_comparisons},
               {"duplicates", duplicates},
               {"misses", misses},
               {"returned", static_cast<std::int64_t>(returned.size())}};
  }

  Api api_;
  Context& ctx_;
  std::int64_t users_;
  int posts_;
  Time rtt_, db_time_;
  double bandwidth_;
  Metric& query_metric_;
  Metric& trip_metric_;
  std::unordered_map<std::int64_t, std::int64_t> user_bytes_;
  std::unordered_map<std::int64_t, Sizes> screens_by_user_;
  SlotPool<Request> in_flight_;
  std::int64_t screens_ = 0, round_trips_ = 0, db_queries_ = 0, bytes_ = 0, needed_bytes_ = 0;
};

LessonInfo info() {
  return {
      "api_design",
      "API design: chatty REST vs query-shaped APIs, N+1 queries, offset vs keyset pagination",
      "A mobile screen needing a user, 20 posts and their authors makes 22 REST round trips one "
      "after the other, each returning whole resources (over-fetching). A GraphQL server with "
      "naive resolvers answers in one round trip but queries the database once per author "
      "(N + 1). Offset pagination scans and throws away every row before the page, and rows "
      "inserted or deleted between two pages shift the window: duplicates and misses.",
      "Ask for the screen in one request shaped by the client (GraphQL) or by a composite "
      "endpoint; batch the resolvers' loads (DataLoader: one WHERE id IN (...) per level). "
      "Paginate with a cursor on an indexed key (keyset): a seek and one page of rows, at any "
      "depth, unaffected by inserts and deletes.",
      {"Facebook GraphQL and DataLoader; Netflix / SoundCloud backends-for-frontends",
       "GitHub and Shopify GraphQL APIs (cursor connections), Slack and Stripe cursor pagination",
       "Use The Index, Luke: 'no offset' (keyset pagination), MySQL / PostgreSQL row-value "
       "comparisons"},
      {{"rest", true, "one request per resource, whole resources, one after the other"},
       {"graphql", false, "one query shaped like the screen; naive resolvers (N + 1 queries)"},
       {"graphql_dataloader", false, "one query; resolvers batched per level (3 queries)"},
       {"composite", false, "one endpoint made for the screen: one join"}},
      {{"users", ParamType::integer, 10000, "users (screens are keyed by user)", 1, 1e9},
       {"posts", ParamType::integer, 20, "posts on a screen (N)", 0, 10000},
       {"rtt", ParamType::duration, "100ms", "client - server round trip (mobile)", 0, 3600},
       {"db_time", ParamType::duration, "2ms",
        "time of one database query (or of a level of "
        "parallel ones)",
        0, 3600},
       {"bandwidth", ParamType::real, 1e6, "client link, bytes per second", 1, 1e12}},
      {},
      {{"paginate",
        "walk `pages` pages of a feed of `rows` rows (newest first) by offset or keyset, with "
        "rows inserted at the top and already-returned rows deleted between pages; returns "
        "rows_scanned, last_page_rows_scanned, comparisons, last_page_comparisons, duplicates, "
        "misses, returned",
        {{"mode",
          ParamType::string,
          "offset",
          "offset or keyset",
          -1e300,
          1e300,
          {"offset", "keyset"}},
         {"rows", ParamType::integer, 1000, "rows in the feed", 0, 1e7},
         {"page_size", ParamType::integer, 20, "rows per page", 1, 1e6},
         {"pages", ParamType::integer, 10, "pages to walk", 0, 1e6},
         {"inserts_per_page", ParamType::integer, 0, "rows inserted before each later page", 0,
          1e6},
         {"deletes_per_page", ParamType::integer, 0, "returned rows deleted before each later page",
          0, 1e6}}}},
      {{"db_queries", MetricSpec::Kind::counter, "database queries"},
       {"round_trips", MetricSpec::Kind::counter, "client - server round trips"}},
      {{"round_trips", Unit::number, "round trips per screen"},
       {"db_queries", Unit::number, "database queries per screen"},
       {"response_bytes", Unit::bytes, "bytes sent to the client per screen"},
       {"overfetched_bytes", Unit::bytes, "bytes per screen the screen does not use"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Api> apis[] = {
      {"rest", Api::rest},
      {"graphql", Api::graphql},
      {"graphql_dataloader", Api::graphql_dataloader},
      {"composite", Api::composite}};
  return std::make_unique<ApiSystem>(variant_value(variant, apis), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
