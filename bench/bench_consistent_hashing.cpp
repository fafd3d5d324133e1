// Benchmark (not a test): key lookups per second for each placement algorithm of the
// consistent_hashing lesson, at 10 and 1000 nodes. Prints a table; never asserts on time.
#include <chrono>
#include <cstdio>
#include <vector>

#include "hldlab/placement.hpp"

using namespace hldlab;
using namespace hldlab::placement;

namespace {

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

volatile std::uint64_t sink;  // keeps the lookups from being optimised away

template <class Lookup>
void bench(const char* name, std::size_t nodes, std::uint64_t lookups, Lookup lookup) {
  std::uint64_t acc = 0, steps = 0;
  const double start = now_seconds();
  for (std::uint64_t k = 0; k < lookups; ++k) acc += lookup(hash_key(k), steps);
  const double elapsed = now_seconds() - start;
  sink = acc;
  std::printf("%-28s %6zu nodes %12.2f M lookups/s %8.1f ns each %8.2f steps\n", name, nodes,
              static_cast<double>(lookups) / elapsed / 1e6,
              elapsed / static_cast<double>(lookups) * 1e9,
              static_cast<double>(steps) / static_cast<double>(lookups));
}

}  // namespace

int main() {
  for (std::size_t n : {std::size_t{10}, std::size_t{1000}}) {
    std::vector<NodeId> nodes;
    std::vector<std::uint64_t> seeds;
    for (NodeId i = 0; i < n; ++i) nodes.push_back(i), seeds.push_back(node_hash(i, 0x48525721ULL));
    Ring one, vnodes;
    one.build(nodes, 1);
    vnodes.build(nodes, 160);
    Maglev maglev;
    maglev.build(nodes, n <= 10 ? 65537 : 1000003);  // M >= 100 x nodes, prime
    const std::uint64_t count = 5'000'000;
    const std::uint64_t slow_count = n > 100 ? 200'000 : count;  // rendezvous is O(n)

    bench("mod_n", n, count, [&](std::uint64_t h, std::uint64_t& s) { return mod_n(h, nodes, s); });
    bench("ring (1 point per node)", n, count,
          [&](std::uint64_t h, std::uint64_t& s) { return one.lookup(h, s); });
    bench("ring_vnodes (160 per node)", n, count,
          [&](std::uint64_t h, std::uint64_t& s) { return vnodes.lookup(h, s); });
    bench("jump", n, count, [&](std::uint64_t h, std::uint64_t& s) {
      return static_cast<NodeId>(jump(h, static_cast<std::int64_t>(n), s));
    });
    bench("rendezvous", n, slow_count,
          [&](std::uint64_t h, std::uint64_t& s) { return rendezvous(h, nodes, seeds, s); });
    bench("maglev", n, count,
          [&](std::uint64_t h, std::uint64_t& s) { return maglev.lookup(h, s); });
    // Bounded loads: place keys one after the other with a cap of 1.25 x the average.
    std::vector<std::int64_t> load(n, 0);
    std::uint64_t placed = 0;
    bench("bounded_load (160 vnodes)", n, count, [&](std::uint64_t h, std::uint64_t& s) {
      const double cap = std::ceil(1.25 * static_cast<double>(++placed) / static_cast<double>(n));
      const NodeId node = bounded(vnodes, h, load, cap, s);
      ++load[node];
      return node;
    });
  }
  return 0;
}
