// Writes a Zipf request trace in libCacheSim's oracleGeneral format (24-byte records: uint32
// time, uint64 object id, uint32 size, int64 next access (-1: not computed)), from hldlab's own
// key generator, so that hldlab and libCacheSim's cachesim replay the identical key stream.
//   hldlab_zipf_trace OUT REQUESTS OBJECTS EXPONENT [SEED] [RPS]
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "hldlab/distribution.hpp"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s OUT REQUESTS OBJECTS EXPONENT [SEED] [RPS]\n", argv[0]);
    return 2;
  }
  const std::uint64_t requests = std::strtoull(argv[2], nullptr, 10);
  const std::uint64_t objects = std::strtoull(argv[3], nullptr, 10);
  const double exponent = std::strtod(argv[4], nullptr);
  const std::uint64_t seed = argc > 5 ? std::strtoull(argv[5], nullptr, 10) : 1;
  const double rps = argc > 6 ? std::strtod(argv[6], nullptr) : 1e6;
  std::FILE* out = std::fopen(argv[1], "wb");
  if (!out) {
    std::fprintf(stderr, "cannot write %s: %s\n", argv[1], std::strerror(errno));
    return 3;
  }
  const hldlab::KeyDistribution keys = hldlab::KeyDistribution::zipf(objects, exponent);
  hldlab::Rng rng(seed);
  unsigned char record[24];
  for (std::uint64_t i = 0; i < requests; ++i) {
    const auto time = static_cast<std::uint32_t>(static_cast<double>(i) / rps);
    const std::uint64_t id = keys.sample(rng) + 1;  // libCacheSim: ids from 1
    const std::uint32_t size = 1;
    const std::int64_t next = -1;
    std::memcpy(record, &time, 4);
    std::memcpy(record + 4, &id, 8);
    std::memcpy(record + 12, &size, 4);
    std::memcpy(record + 16, &next, 8);
    if (std::fwrite(record, sizeof record, 1, out) != 1) {
      std::fprintf(stderr, "cannot write %s\n", argv[1]);
      return 3;
    }
  }
  return std::fclose(out) == 0 ? 0 : 3;
}
