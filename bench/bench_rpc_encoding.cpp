// Benchmark (not a test): encode and decode nanoseconds per message, JSON against the binary
// wire format, for the small message and a 20-item order; then simulated pages per second per
// transport. Prints a table; never asserts on time.
#include <cstdio>
#include <string>

#include "../plugins/rpc_encoding/codec.hpp"
#include "bench_support.hpp"

using namespace hldlab;

namespace {

template <class F>
void time_it(const std::string& name, int n, F&& f) {
  std::size_t sink = 0;
  const double start = bench::now_seconds();
  for (int i = 0; i < n; ++i) sink += f();
  bench::report(name, n, bench::now_seconds() - start, "messages");
  if (sink == 42) std::puts("");  // keep the work
}

}  // namespace

int main() {
  const rpc::Quote q = rpc::sample_quote();
  const rpc::Order o = rpc::sample_order(20);
  const std::string jq = rpc::encode_json(q), bq = rpc::encode_binary(q);
  const std::string jo = rpc::encode_json(o), bo = rpc::encode_binary(o);
  std::printf("bytes: small JSON %zu, binary %zu; order JSON %zu, binary %zu\n", jq.size(),
              bq.size(), jo.size(), bo.size());
  const int n = 1000000, m = 100000;
  time_it("rpc_encoding/encode small JSON", n, [&] { return rpc::encode_json(q).size(); });
  time_it("rpc_encoding/encode small binary", n, [&] { return rpc::encode_binary(q).size(); });
  time_it("rpc_encoding/decode small JSON", n, [&] { return rpc::decode_json_quote(jq).id; });
  time_it("rpc_encoding/decode small binary", n, [&] { return rpc::decode_binary_quote(bq).id; });
  time_it("rpc_encoding/encode order JSON", m, [&] { return rpc::encode_json(o).size(); });
  time_it("rpc_encoding/encode order binary", m, [&] { return rpc::encode_binary(o).size(); });
  time_it("rpc_encoding/decode order JSON", m,
          [&] { return rpc::decode_json_order(jo).items.size(); });
  time_it("rpc_encoding/decode order binary", m,
          [&] { return rpc::decode_binary_order(bo).items.size(); });

  const PluginRegistry lessons = bench::load_lessons(HLDLAB_BENCH_PLUGIN_DIR, "rpc_encoding");
  Workload w;
  w.arrivals.rps = 2000;
  w.keys = KeyDistribution::uniform(10);
  for (const char* v : {"http1", "http2", "http3"})
    bench::run_lesson(lessons, "rpc_encoding", v, {{"loss", 0.02}}, w, seconds(30),
                      std::string("rpc_encoding/") + v + " pages, 2 % loss");
  return 0;
}
