#include <catch2/catch.hpp>
#include <cmath>

#include "codec.hpp"
#include "hldlab_test.hpp"

using namespace hldlab;
using namespace hldlab::testing;

namespace {

/// 200 pages (one every 10 ms... 2 s) on every transport with `params`.
ExperimentResult pages(const Map& params, double seconds_of_traffic = 2.005) {
  std::vector<hldlab::testing::SystemSpec> systems;
  for (const char* v : {"http1", "http2", "http3"}) systems.push_back({"rpc_encoding", v, params});
  return run_experiment(hldlab::testing::constant_workload(100), seconds(seconds_of_traffic),
                        systems);
}

}  // namespace

TEST_CASE("varints and field tags are the protobuf wire format") {
  std::string out;
  rpc::put_varint(out, 300);  // the protobuf documentation's example: AC 02
  CHECK(out == std::string("\xAC\x02", 2));
  out.clear();
  rpc::put_uint(out, 1, 150);  // field 1, varint 150: 08 96 01
  CHECK(out == std::string("\x08\x96\x01", 3));
  // The small message: id 1234567 (tag + 3-byte varint), price (tag + 8 bytes), flag (tag + 1).
  CHECK(rpc::encode_binary(rpc::sample_quote()).size() == 15);
  CHECK(rpc::encode_json(rpc::sample_quote()) ==
        R"({"id":1234567,"price":19.989999999999998,"in_stock":true})");
}

TEST_CASE("both encodings decode back to the original messages, and bad input is refused") {
  const rpc::Quote q = rpc::sample_quote();
  CHECK(rpc::decode_json_quote(rpc::encode_json(q)) == q);
  CHECK(rpc::decode_binary_quote(rpc::encode_binary(q)) == q);
  for (int items : {0, 1, 20, 500}) {
    const rpc::Order o = rpc::sample_order(items);
    CHECK(rpc::decode_json_order(rpc::encode_json(o)) == o);
    CHECK(rpc::decode_binary_order(rpc::encode_binary(o)) == o);
    CHECK(rpc::encode_binary(o).size() < rpc::encode_json(o).size());
  }
  const std::string b = rpc::encode_binary(rpc::sample_order(3));
  CHECK_THROWS(rpc::decode_binary_order(b.substr(0, b.size() - 3)));
  CHECK_THROWS(rpc::decode_json_quote(R"({"id":12,"price":)"));
}

TEST_CASE(
    "without loss a page takes 5 rounds on six HTTP/1.1 connections and 2 or 3 on one multiplexed "
    "connection") {
  // 30 resources. Binary: 799 + headers fit one 1200-byte packet. HTTP/1.1: 5 resources per
  // connection, one per round: 5 rounds (500 ms). HTTP/2, /3: a window of 10, then 20 packets:
  // 2 rounds. JSON: 1727 + 30 bytes are 2 packets, 60 packets: windows 10 + 20 + 40, 3 rounds.
  const auto binary = pages({{"encoding", "binary"}});
  CHECK(row(binary, "http1").mean == Approx(0.5).epsilon(1e-9));
  CHECK(row(binary, "http2").mean == Approx(0.2).epsilon(1e-9));
  CHECK(row(binary, "http3").mean == Approx(0.2).epsilon(1e-9));
  CHECK(figure(binary, "http2", "packets_per_page") == 30);
  const auto json = pages({{"encoding", "json"}});
  CHECK(row(json, "http2").mean == Approx(0.3).epsilon(1e-9));
  CHECK(figure(json, "http2", "body_bytes") == 1727);
  CHECK(figure(json, "http1", "resource_bytes") == 1727 + 250);
  CHECK(figure(json, "http2", "packets_per_page") == 60);
  CHECK(figure(json, "http2", "retransmissions_per_page") == 0);
}

TEST_CASE("HTTP/2 and HTTP/3 lose the same packets; per-stream delivery never delivers later") {
  // Same window, same packets, same losses: the same sends and page times. Delivery per stream
  // is never later than in connection order, and earlier as soon as a loss blocks others.
  const auto r = pages({{"loss", 0.03}}, 20.005);
  CHECK(figure(r, "http2", "retransmissions_per_page") ==
        figure(r, "http3", "retransmissions_per_page"));
  CHECK(row(r, "http2").mean == Approx(row(r, "http3").mean).epsilon(1e-12));
  CHECK(figure(r, "http3", "resource_time") < figure(r, "http2", "resource_time"));
  // Packets are lost with probability p, each attempt: retransmissions / sends = p (5 sd).
  const double sends = figure(r, "http2", "packets_per_page") * 2000;
  const double share = figure(r, "http2", "retransmissions_per_page") * 2000 / sends;
  CHECK(std::abs(share - 0.03) < 5 * std::sqrt(0.03 * 0.97 / sends));
}

TEST_CASE("the rpc_encoding script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("rpc_encoding.lua");
  INFO(r.error << r.output);
  REQUIRE(r.error.empty());
  REQUIRE(r.expectations.size() >= 6);
  REQUIRE(r.exit_code() == 0);
}
