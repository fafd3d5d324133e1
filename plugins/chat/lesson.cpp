// Chat: one-to-one conversations between users who come and go (online, offline).
//
//   problem:  polling       -> every client: every poll_interval: SELECT new messages
//             DB load = online users / interval, whether anybody writes or not; a message
//             waits for the recipient's next poll: delivery ~ RTT + interval / 2.
//   fix:      long_polling  -> the client keeps one request open; the server answers it when
//             a message comes (or after long_poll_timeout), the client opens the next one:
//             one query per answer, delivery ~ one RTT.
//   problem:  push          -> a WebSocket per client; the server pushes each message to the
//             recipient's connection in the order it arrives. Offline recipient: lost. Messages
//             travel through different servers, so one can overtake another: out of order.
//   fix:      push_store_forward -> push, plus every message gets a per-conversation sequence
//             number when it is stored; a message for an offline user stays stored and is
//             fetched on reconnect; the client shows messages in sequence order (holds back
//             a message until the ones before it arrived).
//
// Model: `users` users, conversation c between users 2c and 2c+1; a request is a message in
// conversation key % (users / 2), sent by one side (hashed from the request id, the same in
// every variant) to the other. Its uplink (client -> server, stored in the DB) takes rtt / 2 +
// an exponential jitter, as does a push's downlink (server -> recipient, through whichever
// server holds the connection); a poll's or fetch's answer travels rtt / 2 on the client's own
// connection (in order). Users alternate online ~ exp(online_mean) and offline ~
// exp(offline_mean), drawn from the seed (the same in every variant); `disconnect` forces a
// user offline for a while. A message completes when the recipient has it (ok), or `error` when
// it is lost. Every message is one DB insert; polls, long-poll requests and reconnect fetches
// are one DB query each. The workload's service time is not used.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "hldlab/fifo.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Variant { polling, long_polling, push, push_store_forward };

struct Message {
  Request request;
  std::uint32_t stream = 0;  // conversation x 2 + sending side: one direction of a conversation
  std::uint32_t recipient = 0;
  std::uint64_t seq = 0;         // per stream, assigned when the message is stored
  bool recipient_online = true;  // when it was stored
};

struct User {
  bool churn_online = true;  // the random online/offline process
  Time forced_offline_until = 0;
  bool online = true;         // churn_online and not forced offline
  std::uint32_t toggles = 0;  // churn steps so far (the index of the next draw)
  Fifo<SlotHandle> stored;    // messages in the DB not yet sent to this user (in seq order)
  std::size_t answering = 0;  // of which: on their way in answers to polls or fetches
  bool waiting = false;       // long_polling: a request is open at the server
  bool polling_loop = false;  // long_polling: a request or its answer is under way
  EventId long_poll_timeout;
};

struct Stream {
  std::uint64_t next_seq = 0;      // the sequencer
  std::uint64_t next_shown = 0;    // push_store_forward: the next sequence number to show
  std::uint64_t max_received = 0;  // the highest sequence number received + 1 (0: none)
  std::vector<SlotHandle> held;    // push_store_forward: received early, held back
};

class Chat final : public System {
 public:
  Chat(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        half_rtt_(p.duration("rtt") / 2),
        jitter_(static_cast<double>(p.duration("jitter"))),
        poll_interval_(p.duration("poll_interval")),
        long_poll_timeout_(p.duration("long_poll_timeout")),
        online_mean_(static_cast<double>(p.duration("online_mean"))),
        offline_mean_(static_cast<double>(p.duration("offline_mean"))),
        churn_salt_(ctx.salt("churn")),
        side_salt_(ctx.salt("side")),
        uplink_salt_(ctx.salt("uplink")),
        downlink_salt_(ctx.salt("downlink")),
        users_(p.integer<std::size_t>("users") / 2 * 2),
        streams_(users_.size()),
        queries_metric_(ctx.metric("db_queries")),
        lost_metric_(ctx.metric("lost")),
        out_of_order_metric_(ctx.metric("out_of_order")),
        online_metric_(ctx.metric("online_users")) {
    const std::uint64_t phase_salt = ctx.salt("poll phase");
    for (std::uint32_t u = 0; u < users_.size(); ++u) {
      User& user = users_[u];
      if (offline_mean_ > 0) {  // start in the stationary state, then alternate
        const double share_online = online_mean_ / (online_mean_ + offline_mean_);
        user.churn_online = Rng::uniform_at(churn_salt_, u, 1u << 31) < share_online;
        user.online = user.churn_online;
        schedule_churn(u);
      }
      online_ += user.online;
      if (variant_ == Variant::polling) {
        const double phase =
            Rng::uniform_at(phase_salt, u, 0) * static_cast<double>(poll_interval_);
        ctx_.after(round_time(phase), [this, u] { poll_tick(u); });
      } else if (variant_ == Variant::long_polling && user.online) {
        open_long_poll(u);
      }
    }
    online_metric_.set(static_cast<double>(online_));
  }

  void handle(const Request& r) override {
    const auto conversation = static_cast<std::uint32_t>(r.key % (users_.size() / 2));
    const std::uint32_t side = Rng::hash(r.id ^ side_salt_) & 1;
    const SlotHandle h = messages_.acquire();
    messages_[h] = Message{r, 2 * conversation + side, 2 * conversation + 1 - side};
    last_arrival_ = r.arrival;
    queries_at_last_arrival_ = queries_;
    ctx_.after(link_delay(r.id, uplink_salt_), [this, h] { store(h); });
  }

  void inject(const std::string&, const Value& p) override {  // "disconnect"
    const auto u = static_cast<std::size_t>(p["user"].as_int());
    if (u >= users_.size()) throw std::invalid_argument("no user " + std::to_string(u));
    User& user = users_[u];
    user.forced_offline_until =
        std::max(user.forced_offline_until, ctx_.now() + p["duration"].as_int());
    update_online(static_cast<std::uint32_t>(u));
    ctx_.after(p["duration"].as_int(), [this, u] { update_online(static_cast<std::uint32_t>(u)); });
  }

  Value call(const std::string&, const Value& args) override {  // "user"
    const auto u = static_cast<std::size_t>(args["id"].as_int());
    if (u >= users_.size()) throw std::invalid_argument("no user " + std::to_string(u));
    return Map{{"online", users_[u].online},
               {"stored", static_cast<std::int64_t>(users_[u].stored.size())}};
  }

  Map figures() const override {
    const double span = to_seconds(last_arrival_ - counting_from_);
    const double messages = static_cast<double>(messages_counted_);
    return {{"delivered", delivered_},
            {"lost", lost_},
            {"out_of_order", out_of_order_},
            {"db_queries", queries_},
            {"queries_per_message", messages > 0 ? static_cast<double>(queries_) / messages : 0.0},
            {"db_qps", span > 0 ? static_cast<double>(queries_at_last_arrival_) / span : 0.0},
            {"online_delivery_mean", to_seconds(static_cast<Time>(online_delivery_.mean()))},
            {"online_delivery_p99", to_seconds(online_delivery_.quantile(0.99))},
            {"offline_delivery_p50", to_seconds(offline_delivery_.quantile(0.5))}};
  }

  void reset_stats() override {
    delivered_ = lost_ = out_of_order_ = queries_ = queries_at_last_arrival_ = 0;
    messages_counted_ = 0;
    online_delivery_.reset();
    offline_delivery_.reset();
    counting_from_ = last_arrival_ = ctx_.now();
  }

 private:
  bool counted(const Request& r) const { return r.arrival >= counting_from_; }

  Time link_delay(std::uint64_t id, std::uint64_t salt) const {
    const double u = Rng::uniform_at(salt, id, 0);
    return half_rtt_ + round_time(-jitter_ * std::log1p(-u));
  }

  void query() {
    ++queries_;
    queries_metric_.add(1);
  }

  // ---- online / offline ------------------------------------------------------------------

  void schedule_churn(std::uint32_t u) {
    User& user = users_[u];
    const double mean = user.churn_online ? online_mean_ : offline_mean_;
    const double draw = -mean * std::log1p(-Rng::uniform_at(churn_salt_, u, user.toggles++));
    ctx_.after(round_time(draw), [this, u] {
      users_[u].churn_online = !users_[u].churn_online;
      update_online(u);
      schedule_churn(u);
    });
  }

  void update_online(std::uint32_t u) {
    User& user = users_[u];
    const bool online = user.churn_online && ctx_.now() >= user.forced_offline_until;
    if (online == user.online) return;
    user.online = online;
    online_ += online ? 1 : -1;
    online_metric_.set(static_cast<double>(online_));
    if (!online) {
      if (user.waiting) {  // long_polling: the open request dies with the connection
        user.waiting = false;
        user.polling_loop = false;
        ctx_.cancel(user.long_poll_timeout);
      }
      return;
    }
    switch (variant_) {
      case Variant::polling:
        return poll(u);  // the app polls as it opens
      case Variant::long_polling:
        if (!user.polling_loop) open_long_poll(u);
        return;
      case Variant::push:
        return;  // nothing was kept for it
      case Variant::push_store_forward:
        ctx_.after(half_rtt_, [this, u] { fetch(u); });
        return;
    }
  }

  // ---- the server ---------------------------------------------------------------------------

  /// The message reaches the server: it is stored (one insert) with its sequence number.
  void store(SlotHandle h) {
    Message& m = messages_[h];
    m.seq = streams_[m.stream].next_seq++;
    User& to = users_[m.recipient];
    m.recipient_online = to.online;
    query();
    if (counted(m.request)) ++messages_counted_;
    switch (variant_) {
      case Variant::polling:
        return to.stored.push_back(h);  // the next poll finds it
      case Variant::long_polling:
        to.stored.push_back(h);
        if (to.waiting) answer(m.recipient);
        return;
      case Variant::push:
        if (!to.online) return lose(h);
        break;
      case Variant::push_store_forward:
        if (!to.online) return to.stored.push_back(h);  // fetched on reconnect
        break;
    }
    ctx_.after(link_delay(m.request.id, downlink_salt_), [this, h] { receive(h); });
  }

  /// Answer a poll, a long poll or a fetch of `u` with every stored message not yet answered:
  /// they arrive together, rtt / 2 later, on the user's connection.
  void send_stored(std::uint32_t u) {
    User& user = users_[u];
    const std::size_t n = user.stored.size() - user.answering;
    user.answering += n;
    ctx_.after(half_rtt_, [this, u, n] {
      User& to = users_[u];
      to.answering -= n;
      for (std::size_t i = 0; i < n; ++i) receive(to.stored.pop_front());
      if (variant_ == Variant::long_polling) {  // the client opens its next request
        to.polling_loop = false;
        if (to.online) open_long_poll(u);
      }
    });
  }

  void poll_tick(std::uint32_t u) {
    if (users_[u].online) poll(u);
    ctx_.after(poll_interval_, [this, u] { poll_tick(u); });
  }

  void poll(std::uint32_t u) {
    query();
    if (users_[u].stored.size() > users_[u].answering) send_stored(u);
  }

  void open_long_poll(std::uint32_t u) {
    users_[u].polling_loop = true;
    ctx_.after(half_rtt_, [this, u] {
      User& user = users_[u];
      if (!user.online) {  // the client left before its request arrived
        user.polling_loop = false;
        return;
      }
      query();
      if (user.stored.size() > user.answering) return send_stored(u);
      user.waiting = true;
      user.long_poll_timeout = ctx_.after(long_poll_timeout_, [this, u] { answer(u); });
    });
  }

  void answer(std::uint32_t u) {
    User& user = users_[u];
    user.waiting = false;
    ctx_.cancel(user.long_poll_timeout);
    send_stored(u);
  }

  void fetch(std::uint32_t u) {
    if (!users_[u].online) return;  // gone again: the next reconnect fetches
    query();
    if (users_[u].stored.size() > users_[u].answering) send_stored(u);
  }

  // ---- the recipient ------------------------------------------------------------------------

  void receive(SlotHandle h) {
    Message& m = messages_[h];
    Stream& s = streams_[m.stream];
    if (variant_ != Variant::push_store_forward) return show(h);
    if (m.seq != s.next_shown) {  // an earlier one is still missing: hold this one back
      s.held.insert(std::upper_bound(
                        s.held.begin(), s.held.end(), m.seq,
                        [this](std::uint64_t seq, SlotHandle o) { return seq < messages_[o].seq; }),
                    h);
      return;
    }
    show(h);
    while (!s.held.empty() && messages_[s.held.front()].seq == s.next_shown) {
      const SlotHandle next = s.held.front();
      s.held.erase(s.held.begin());
      show(next);
    }
  }

  void show(SlotHandle h) {
    const Message& m = messages_[h];
    Stream& s = streams_[m.stream];
    s.next_shown = m.seq + 1;
    const bool late = m.seq + 1 < s.max_received;
    s.max_received = std::max(s.max_received, m.seq + 1);
    if (counted(m.request)) {
      ++delivered_;
      if (late) {
        ++out_of_order_;
        out_of_order_metric_.add(1);
      }
      (m.recipient_online ? online_delivery_ : offline_delivery_)
          .record(ctx_.now() - m.request.arrival);
    }
    ctx_.complete(m.request, Outcome::ok);
    messages_.release(h);
  }

  void lose(SlotHandle h) {
    if (counted(messages_[h].request)) ++lost_;
    lost_metric_.add(1);
    ctx_.complete(messages_[h].request, Outcome::error);
    messages_.release(h);
  }

  Variant variant_;
  Context& ctx_;
  Time half_rtt_;
  double jitter_;
  Time poll_interval_, long_poll_timeout_;
  double online_mean_, offline_mean_;
  std::uint64_t churn_salt_, side_salt_, uplink_salt_, downlink_salt_;
  std::vector<User> users_;
  std::vector<Stream> streams_;
  Metric& queries_metric_;
  Metric& lost_metric_;
  Metric& out_of_order_metric_;
  Metric& online_metric_;
  SlotPool<Message> messages_;
  std::int64_t online_ = 0;

  Time counting_from_ = 0, last_arrival_ = 0;
  std::int64_t delivered_ = 0, lost_ = 0, out_of_order_ = 0, queries_ = 0,
               queries_at_last_arrival_ = 0, messages_counted_ = 0;
  Histogram online_delivery_;   // sent -> shown, recipient online when it was stored (ns)
  Histogram offline_delivery_;  // the same, recipient offline then
};

LessonInfo info() {
  return {
      "chat",
      "Chat: polling loads the DB and waits; push delivers in one RTT, store-and-forward loses "
      "nothing and keeps order",
      "Polling: every client asks the database for new messages every interval, so the DB "
      "serves online users / interval queries per second even when nobody writes, and a "
      "message waits half an interval on average. Plain push over WebSockets is fast, but a "
      "message for an offline user is lost, and messages that travel through different servers "
      "overtake each other: the recipient sees them out of order.",
      "Long polling or push: the server sends a message as it comes (one query or none per "
      "message, delivery in about one RTT). Store and forward: every message is stored with a "
      "per-conversation sequence number; a message for an offline user waits in the store and "
      "is fetched on reconnect; the client shows messages in sequence order, holding back one "
      "whose predecessor has not arrived.",
      {"WhatsApp (Erlang/ejabberd): persistent connections, messages stored until the "
       "recipient's device acknowledges them",
       "Slack: WebSocket push from gateway servers, per-channel ordering, missed messages "
       "fetched on reconnect",
       "Facebook Messenger (Iris): a per-user ordered queue with sequence ids, clients resume "
       "from their last id",
       "Long polling before WebSockets: Comet, BOSH (XMPP over HTTP), early Facebook chat"},
      {{"polling", true, "every client queries the DB every poll_interval"},
       {"long_polling", false, "one open request per client, answered when a message comes"},
       {"push", true, "WebSocket push in arrival order; offline recipients lose the message"},
       {"push_store_forward", false,
        "push + stored messages with sequence numbers: fetched on reconnect, shown in order"}},
      {{"users", ParamType::integer, 2000, "users (conversation c: users 2c and 2c+1)", 2, 1e7},
       {"rtt", ParamType::duration, "50ms", "round trip client <-> server", 0, 60},
       {"jitter", ParamType::duration, "10ms",
        "mean of the exponential extra delay of a message's uplink and of a push's downlink", 0,
        60},
       {"poll_interval", ParamType::duration, "1s", "polling: time between two polls", 1e-6, 3600},
       {"long_poll_timeout", ParamType::duration, "30s",
        "long_polling: an open request is answered empty after this", 1e-6, 3600},
       {"online_mean", ParamType::duration, "20s", "mean time a user stays online", 1e-3, 1e7},
       {"offline_mean", ParamType::duration, "5s",
        "mean time a user stays offline (0: everybody always online)", 0, 1e7}},
      {{"disconnect",
        "user `user` goes offline for `duration` (then back, unless the random churn has it "
        "offline)",
        {{"user", ParamType::integer, 0, "user id", 0, 1e7},
         {"duration", ParamType::duration, "5s", "how long", 0, 1e7}}}},
      {{"user",
        "whether user `id` is online and how many messages the DB keeps for it",
        {{"id", ParamType::integer, 0, "user id", 0, 1e7}}}},
      {{"db_queries", MetricSpec::Kind::counter, "DB queries: inserts, polls, fetches"},
       {"lost", MetricSpec::Kind::counter, "messages lost (recipient offline, not stored)"},
       {"out_of_order", MetricSpec::Kind::counter,
        "messages shown after a later one of the same conversation"},
       {"online_users", MetricSpec::Kind::gauge, "users online now"}},
      {{"delivered", Unit::count, "messages shown to their recipient"},
       {"lost", Unit::count, "messages lost: recipient offline and nothing kept"},
       {"out_of_order", Unit::count,
        "messages shown after a later message of the same conversation direction"},
       {"db_queries", Unit::count, "DB queries: one insert per message, polls, fetches"},
       {"queries_per_message", Unit::number, "DB queries per message sent"},
       {"db_qps", Unit::per_second, "DB queries per second while the traffic lasted"},
       {"online_delivery_mean", Unit::seconds,
        "mean delivery time of messages whose recipient was online"},
       {"online_delivery_p99", Unit::seconds,
        "P99 delivery time of messages whose recipient was online"},
       {"offline_delivery_p50", Unit::seconds,
        "median delivery time of messages stored for an offline recipient"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"polling", Variant::polling},
      {"long_polling", Variant::long_polling},
      {"push", Variant::push},
      {"push_store_forward", Variant::push_store_forward}};
  return std::make_unique<Chat>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
