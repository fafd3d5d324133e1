// RPC encoding and transport: JSON over HTTP/1.1 against a binary encoding over one multiplexed
// connection.
//
//   problem:  a page loads N resources, each an order encoded as JSON (field names repeated in
//             every message, numbers as text) over HTTP/1.1: 6 connections, one request at a
//             time on each (the next request waits for the previous response: head-of-line
//             blocking per connection), text headers on every response
//   fixes:    binary encoding (protobuf wire format: field tags and varints): fewer bytes,
//             fewer packets
//             HTTP/2: every request at once on one TCP connection, compressed headers; but TCP
//             delivers in order, so one lost packet holds back every stream behind it, and one
//             congestion window halves for all of them
//             HTTP/3 (QUIC): the same multiplexing, loss recovery per stream: a lost packet holds
//             back only its own stream
//
// Transport model, in rounds of one round trip: in each round a connection sends its congestion
// window of packets (retransmissions first), capped by its share of the link's bandwidth-delay
// product; they arrive at the end of the round. Each packet is lost with probability `loss`
// (drawn per (page, resource, packet, attempt): every variant loses the same packets); a lost
// packet is retransmitted the next round. The window starts at initial_cwnd, doubles every
// round (slow start) until a loss halves it, then grows by one a round. A packet is delivered
// once every packet before it on its connection (TCP) or its stream (QUIC) has arrived; a
// resource is done when its last packet is delivered; the page when every resource is.
// Handshakes are not modelled (warm connections).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "codec.hpp"
#include "hldlab/plugin.hpp"
#include "hldlab/slot_pool.hpp"

namespace {
using namespace hldlab;

enum class Transport { http1, http2, http3 };

/// Response headers per resource: HTTP/1.1 text headers, HTTP/2 and /3 compressed (HPACK,
/// QPACK) after the first response.
constexpr std::int64_t kHttp1HeaderBytes = 250;
constexpr std::int64_t kCompressedHeaderBytes = 30;

struct Packet {
  int resource = 0, seq = 0, attempt = 0;
};

class RpcSystem final : public System {
 public:
  RpcSystem(Transport transport, const Params& p, Context& ctx)
      : transport_(transport),
        ctx_(ctx),
        resources_(p.integer<int>("resources")),
        rtt_(p.duration("rtt")),
        loss_(p.real("loss")),
        initial_cwnd_(static_cast<double>(p.integer("initial_cwnd"))),
        connections_(transport == Transport::http1 ? p.integer<int>("http1_connections") : 1),
        loss_salt_(ctx.salt("packet loss")),
        retransmit_metric_(ctx.metric("retransmissions")),
        bytes_metric_(ctx.metric("bytes")) {
    const rpc::Order order = rpc::sample_order(p.integer<int>("items"));
    const std::string body =
        p.string("encoding") == "binary" ? rpc::encode_binary(order) : rpc::encode_json(order);
    body_bytes_ = static_cast<std::int64_t>(body.size());
    resource_bytes_ =
        body_bytes_ + (transport == Transport::http1 ? kHttp1HeaderBytes : kCompressedHeaderBytes);
    const auto mss = p.integer("mss");
    packets_per_resource_ = static_cast<int>((resource_bytes_ + mss - 1) / mss);
    const double bdp = p.real("bandwidth") * to_seconds(rtt_) / static_cast<double>(mss);
    round_cap_ = std::max(1, static_cast<int>(bdp / connections_));
    arrival_round_.resize(static_cast<std::size_t>(resources_));
  }

  void handle(const Request& r) override {
    const Page page = load(r.id);
    ++pages_;
    packets_ += page.packets;
    retransmissions_ += page.retransmissions;
    resource_time_sum_ += page.resource_time_sum;
    retransmit_metric_.add(static_cast<double>(page.retransmissions));
    bytes_metric_.add(static_cast<double>(resource_bytes_ * resources_));
    const SlotHandle h = in_flight_.acquire();
    in_flight_[h] = r;
    ctx_.after(page.time, [this, h] {
      ctx_.complete(in_flight_[h], Outcome::ok);
      in_flight_.release(h);
    });
  }

  Value call(const std::string& op, const Value& args) override {
    if (op != "sizes") return System::call(op, args);
    const rpc::Quote q = rpc::sample_quote();
    const rpc::Order o = rpc::sample_order(static_cast<int>(args.as_map().at("items").as_int()));
    const std::string jq = rpc::encode_json(q), bq = rpc::encode_binary(q);
    const std::string jo = rpc::encode_json(o), bo = rpc::encode_binary(o);
    const bool round_trip = rpc::decode_json_quote(jq) == q && rpc::decode_binary_quote(bq) == q &&
                            rpc::decode_json_order(jo) == o && rpc::decode_binary_order(bo) == o;
    return Map{{"json_small", static_cast<std::int64_t>(jq.size())},
               {"binary_small", static_cast<std::int64_t>(bq.size())},
               {"json_large", static_cast<std::int64_t>(jo.size())},
               {"binary_large", static_cast<std::int64_t>(bo.size())},
               {"round_trip", round_trip}};
  }

  Map figures() const override {
    const double n = pages_ ? static_cast<double>(pages_) : 1.0;
    return {{"body_bytes", body_bytes_},
            {"resource_bytes", resource_bytes_},
            {"packets_per_page", static_cast<double>(packets_) / n},
            {"retransmissions_per_page", static_cast<double>(retransmissions_) / n},
            {"resource_time", to_seconds(resource_time_sum_) / (n * resources_)}};
  }

  void reset_stats() override {
    pages_ = packets_ = retransmissions_ = 0;
    resource_time_sum_ = 0;
  }

 private:
  struct Page {
    Time time = 0;
    Time resource_time_sum = 0;
    std::int64_t packets = 0, retransmissions = 0;
  };

  /// One connection: its congestion window and what it has to send.
  struct Connection {
    double cwnd = 0, ssthresh = 1e18;
    std::vector<Packet> retransmit;
    std::vector<int> resources;      // HTTP/1.1: its resources, one after the other
    std::size_t current = 0;         // HTTP/1.1: the resource being transferred
    int next_seq = 0;                // HTTP/1.1: next new packet of the current resource
    int sendable_from = 0;           // HTTP/1.1: round the current request reaches the server
    std::vector<Packet> send_order;  // first transmissions, in order (TCP delivery order)
  };

  bool lost(std::uint64_t page, const Packet& p) const {
    const std::uint64_t key = static_cast<std::uint64_t>(p.resource) << 40 |
                              static_cast<std::uint64_t>(p.seq) << 8 |
                              static_cast<std::uint64_t>(p.attempt);
    return Rng::uniform_at(loss_salt_, page, key) < loss_;
  }

  /// Load one page; returns its time and counts.
  Page load(std::uint64_t page_id) {
    Page page;
    for (auto& a : arrival_round_) a.assign(static_cast<std::size_t>(packets_per_resource_), -1);
    std::vector<Connection> conns(static_cast<std::size_t>(connections_));
    for (Connection& c : conns) c.cwnd = initial_cwnd_;
    for (int k = 0; k < resources_; ++k)
      conns[static_cast<std::size_t>(k % connections_)].resources.push_back(k);
    // HTTP/2 and /3: every stream is open at once; new packets go round-robin over them.
    int rr_stream = 0;
    std::vector<int> rr_next(static_cast<std::size_t>(resources_), 0);
    std::int64_t new_left = static_cast<std::int64_t>(resources_) * packets_per_resource_;
    std::int64_t missing = new_left;
    int round = 0;
    for (; missing > 0; ++round) {
      for (Connection& c : conns) {
        if (transport_ == Transport::http1 &&
            (c.current >= c.resources.size() || round < c.sendable_from))
          continue;
        const int budget = std::min(round_cap_, std::max(1, static_cast<int>(c.cwnd)));
        bool loss_seen = false;
        std::vector<Packet> again;
        for (int sent = 0; sent < budget; ++sent) {
          Packet p;
          if (!c.retransmit.empty()) {
            p = c.retransmit.front();
            c.retransmit.erase(c.retransmit.begin());
          } else if (!next_new(c, p, rr_stream, rr_next, new_left)) {
            break;
          }
          ++page.packets;
          if (p.attempt > 0) ++page.retransmissions;
          if (lost(page_id, p)) {
            loss_seen = true;
            again.push_back({p.resource, p.seq, p.attempt + 1});
          } else {
            arrival_round_[static_cast<std::size_t>(p.resource)][static_cast<std::size_t>(p.seq)] =
                round;
            --missing;
          }
        }
        c.retransmit.insert(c.retransmit.end(), again.begin(), again.end());
        if (loss_seen) {
          c.ssthresh = std::max(2.0, c.cwnd / 2);
          c.cwnd = c.ssthresh;
        } else {
          c.cwnd = c.cwnd < c.ssthresh ? c.cwnd * 2 : c.cwnd + 1;
        }
        if (transport_ == Transport::http1) advance_http1(c, round);
      }
    }
    // Delivery: in order per connection (TCP) or per stream (QUIC).
    std::vector<int> done_round(static_cast<std::size_t>(resources_), 0);
    if (transport_ == Transport::http2) {
      int delivered = -1;
      for (const Packet& p : conns[0].send_order) {
        delivered = std::max(
            delivered,
            arrival_round_[static_cast<std::size_t>(p.resource)][static_cast<std::size_t>(p.seq)]);
        done_round[static_cast<std::size_t>(p.resource)] = delivered;
      }
    } else {  // HTTP/3 per stream; HTTP/1.1 has one stream per connection at a time
      for (int k = 0; k < resources_; ++k) {
        const auto& a = arrival_round_[static_cast<std::size_t>(k)];
        done_round[static_cast<std::size_t>(k)] = *std::max_element(a.begin(), a.end());
      }
    }
    int last = 0;
    for (int d : done_round) {
      last = std::max(last, d);
      page.resource_time_sum += (d + 1) * rtt_;
    }
    page.time = (last + 1) * rtt_;
    return page;
  }

  /// The next first transmission of connection `c`, if any.
  bool next_new(Connection& c, Packet& p, int& rr_stream, std::vector<int>& rr_next,
                std::int64_t& new_left) {
    if (transport_ == Transport::http1) {
      if (c.next_seq >= packets_per_resource_) return false;
      p = {c.resources[c.current], c.next_seq++, 0};
    } else {
      if (new_left == 0) return false;
      while (rr_next[static_cast<std::size_t>(rr_stream)] >= packets_per_resource_)
        rr_stream = (rr_stream + 1) % resources_;
      p = {rr_stream, rr_next[static_cast<std::size_t>(rr_stream)]++, 0};
      rr_stream = (rr_stream + 1) % resources_;
    }
    --new_left;
    c.send_order.push_back(p);
    return true;
  }

  /// HTTP/1.1: once the current response has fully arrived, the next request leaves; it
  /// reaches the server for the next round.
  void advance_http1(Connection& c, int round) {
    if (c.current >= c.resources.size() || c.next_seq < packets_per_resource_ ||
        !c.retransmit.empty())
      return;
    const auto& a = arrival_round_[static_cast<std::size_t>(c.resources[c.current])];
    if (std::find(a.begin(), a.end(), -1) != a.end()) return;
    ++c.current;
    c.next_seq = 0;
    c.sendable_from = round + 1;
  }

  Transport transport_;
  Context& ctx_;
  int resources_;
  Time rtt_;
  double loss_, initial_cwnd_;
  int connections_;
  std::uint64_t loss_salt_;
  Metric& retransmit_metric_;
  Metric& bytes_metric_;
  std::int64_t body_bytes_ = 0, resource_bytes_ = 0;
  int packets_per_resource_ = 1, round_cap_ = 1;
  std::vector<std::vector<int>> arrival_round_;  // [resource][packet]: round it arrived
  SlotPool<Request> in_flight_;
  std::int64_t pages_ = 0, packets_ = 0, retransmissions_ = 0;
  Time resource_time_sum_ = 0;
};

LessonInfo info() {
  return {
      "rpc_encoding",
      "RPC encoding and transport: JSON over HTTP/1.1 vs binary over HTTP/2 and HTTP/3",
      "JSON repeats every field name in every message and writes numbers as text, so messages "
      "are big; HTTP/1.1 sends one request at a time per connection (6 per host), so a page of "
      "many resources waits round trip after round trip, with text headers on every response.",
      "Encode with field tags and varints (protobuf): a fraction of the bytes. Multiplex every "
      "request on one connection (HTTP/2, compressed headers). Under packet loss TCP's in-order "
      "delivery blocks every stream behind a lost packet; QUIC (HTTP/3) recovers loss per "
      "stream.",
      {"gRPC: protobuf over HTTP/2; Thrift, Avro, Cap'n Proto, FlatBuffers",
       "HTTP/2 (RFC 9113) multiplexing and HPACK; HTTP/3 (RFC 9114) over QUIC (RFC 9000), QPACK",
       "Langley et al., 'The QUIC Transport Protocol', SIGCOMM 2017; Google / Cloudflare reports "
       "of HTTP/2 degrading under loss"},
      {{"http1", true, "6 connections per host, one request at a time on each"},
       {"http2", false, "every request at once on one TCP connection"},
       {"http3", false, "every request at once on one QUIC connection, loss recovered per stream"}},
      {{"resources", ParamType::integer, 30, "resources on a page", 1, 10000},
       {"items", ParamType::integer, 20, "items in each order (the message size)", 0, 100000},
       {"encoding", ParamType::string, "json", "json or binary", -1e300, 1e300, {"json", "binary"}},
       {"rtt", ParamType::duration, "100ms", "round trip client - server", 1e-6, 3600},
       {"bandwidth", ParamType::real, 1.25e6, "link bandwidth, bytes per second", 1e3, 1e12},
       {"loss", ParamType::real, 0.0, "probability that a packet is lost", 0, 0.5},
       {"mss", ParamType::integer, 1200, "payload bytes per packet", 100, 65536},
       {"initial_cwnd", ParamType::integer, 10, "initial congestion window, packets", 1, 10000},
       {"http1_connections", ParamType::integer, 6, "HTTP/1.1 connections per host", 1, 100}},
      {},
      {{"sizes",
        "encode the small message (id, price, flag) and an order of `items` items in JSON and "
        "binary, decode them back; returns json_small, binary_small, json_large, binary_large "
        "(bytes) and round_trip (every decoded message equals the original)",
        {{"items", ParamType::integer, 20, "items in the order", 0, 100000}}}},
      {{"retransmissions", MetricSpec::Kind::counter, "packets sent again after a loss"},
       {"bytes", MetricSpec::Kind::counter, "response bytes sent (bodies and headers)"}},
      {{"body_bytes", Unit::bytes, "bytes of one encoded order"},
       {"resource_bytes", Unit::bytes, "bytes of one response: body and headers"},
       {"packets_per_page", Unit::number, "packets sent per page, retransmissions included"},
       {"retransmissions_per_page", Unit::number, "packets sent again per page"},
       {"resource_time", Unit::seconds, "mean time until a resource is delivered"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Transport> transports[] = {
      {"http1", Transport::http1}, {"http2", Transport::http2}, {"http3", Transport::http3}};
  return std::make_unique<RpcSystem>(variant_value(variant, transports), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
