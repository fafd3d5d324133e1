// Chunking of real bytes for the file_sync lesson: fixed-size blocks and content-defined chunks
// cut by a Gear rolling hash (FastCDC's hash, one cut condition), plus a 64-bit content hash.
//
//   fixed blocks:  cut every B bytes: an insertion shifts every later boundary.
//   Gear CDC:      h = (h << 1) + gear[byte]; cut after byte i when i + 1 - start >= min and
//                  h < 2^64 / (target - min), or at max: the top bits of h depend on the last
//                  64 bytes only, so a boundary depends on the content around it, not on its
//                  offset. After the minimum, a cut happens with probability p = 1 / (target -
//                  min) per byte: chunk length = min + geometric(p), mean ~ target (the max of
//                  8 x target truncates e^-10 of the tail).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "hldlab/sim.hpp"

namespace file_sync {

/// The work chunking and hashing did: bytes run through the rolling hash and through the
/// content hash.
struct Work {
  std::uint64_t rolled = 0;
  std::uint64_t hashed = 0;
};

/// 64-bit content hash of `n` bytes (8-byte words through the splitmix64 finaliser). Not
/// cryptographic: the lesson stands it in for SHA-256 (collisions ~ chunks^2 / 2^65).
inline std::uint64_t content_hash(const std::uint8_t* data, std::size_t n, Work& work) {
  work.hashed += n;
  std::uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    std::uint64_t word;
    std::memcpy(&word, data + i, 8);
    h = hldlab::Rng::hash(h ^ word);
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, data + i, n - i);
  return hldlab::Rng::hash(h ^ tail ^ (static_cast<std::uint64_t>(n - i) << 56));
}

/// A chunk of a file: where it starts, its length, and its content hash.
struct Chunk {
  std::size_t offset = 0, length = 0;
  std::uint64_t hash = 0;
};

/// Split `data` into blocks of `block` bytes (the last one shorter).
inline std::vector<Chunk> fixed_blocks(const std::vector<std::uint8_t>& data, std::size_t block,
                                       Work& work) {
  std::vector<Chunk> out;
  for (std::size_t at = 0; at < data.size(); at += block) {
    const std::size_t n = std::min(block, data.size() - at);
    out.push_back({at, n, content_hash(data.data() + at, n, work)});
  }
  return out;
}

/// Content-defined chunking with a Gear rolling hash.
class GearChunker {
 public:
  /// Chunks of mean ~target bytes, at least target / 4, at most 8 x target.
  explicit GearChunker(std::size_t target)
      : min_(target / 4), max_(target * 8), threshold_(threshold_for(target - target / 4)) {
    std::uint64_t x = 0x6A09E667F3BCC909ULL;  // a fixed table: the same cuts everywhere
    for (auto& g : gear_) g = hldlab::Rng::splitmix64(x);
  }

  std::vector<Chunk> chunks(const std::vector<std::uint8_t>& data, Work& work) const {
    std::vector<Chunk> out;
    std::size_t start = 0;
    while (start < data.size()) {
      const std::size_t n = cut(data.data() + start, data.size() - start, work);
      out.push_back({start, n, content_hash(data.data() + start, n, work)});
      start += n;
    }
    return out;
  }

  /// Length of the chunk starting at `data` (at most `n`).
  std::size_t cut(const std::uint8_t* data, std::size_t n, Work& work) const {
    if (n <= min_) return n;
    const std::size_t end = std::min(n, max_);
    std::uint64_t h = 0;
    // The hash covers the 64 bytes before the minimum too, so that a cut right after the
    // minimum depends on content like every other.
    std::size_t i = min_ >= 64 ? min_ - 64 : 0;
    for (; i < min_; ++i) h = (h << 1) + gear_[data[i]];
    for (; i < end; ++i) {
      h = (h << 1) + gear_[data[i]];
      if (h < threshold_) {
        work.rolled += i + 1 - (min_ >= 64 ? min_ - 64 : 0);
        return i + 1;
      }
    }
    work.rolled += end - (min_ >= 64 ? min_ - 64 : 0);
    return end;
  }

  std::size_t min_size() const { return min_; }
  std::size_t max_size() const { return max_; }

 private:
  static std::uint64_t threshold_for(std::size_t spread) {
    return spread <= 1 ? ~0ULL : static_cast<std::uint64_t>(18446744073709551616.0 / spread);
  }
  std::size_t min_, max_;
  std::uint64_t threshold_;
  std::uint64_t gear_[256];
};

}  // namespace file_sync
