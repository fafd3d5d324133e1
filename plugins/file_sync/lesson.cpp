// File sync (Dropbox-like): users edit files; after each edit the client syncs the file with
// the server's content store, which keeps every chunk once (deduplicated across users).
//
//   problem:  whole_file   -> on change: upload the whole file
//             a one-byte edit of a 128 KiB file sends 128 KiB, and the store keeps every version
//             whole.
//   problem:  fixed_blocks -> cut the file every B bytes, hash each block, upload the blocks
//             the store does not have. An overwrite sends one block; but an insertion or a
//             deletion shifts every later block boundary: every later block is new, and half
//             the file (on average) is sent again.
//   fix:      cdc          -> content-defined chunking: a Gear rolling hash over the bytes cuts
//             where the content says so (h < 2^64 / (target - min)), so boundaries move with the
//             content; an edit changes the chunk it falls in (and rarely a neighbour): about
//             one chunk is sent.
//
// Model: `users` users each hold copies of the same `files` files of `file_size` random bytes
// (real bytes, from the seed: every variant has the same). A request is a sync: file key %
// (users x files) of its user gets an edit (insert, delete or overwrite of 1..max_edit bytes at
// a random offset, hashed from the request id: the same edits, so the same bytes, in every
// variant), is chunked and hashed by the client, and the chunks the store lacks are uploaded
// with a manifest (hash_bytes per chunk; whole_file sends none). Cost model: the client spends
// hash_ns_per_byte per byte rolled or hashed, then one rtt and (data + manifest) / bandwidth.
// The store starts with the users' identical files (each chunk stored once). The workload's
// service time is not used.
#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "chunking.hpp"
#include "hldlab/histogram.hpp"
#include "hldlab/plugin.hpp"

namespace {
using namespace hldlab;
using file_sync::Chunk;

enum class Variant { whole_file, fixed_blocks, cdc };
enum class Edit : std::uint8_t { insert, erase, overwrite };

class FileSync final : public System {
 public:
  FileSync(Variant variant, const Params& p, Context& ctx)
      : variant_(variant),
        ctx_(ctx),
        chunker_(p.integer<std::size_t>("chunk_target")),
        block_(p.integer<std::size_t>("block_size")),
        max_edit_(p.integer<std::uint64_t>("max_edit")),
        ns_per_byte_(p.real("hash_ns_per_byte")),
        bandwidth_(p.real("bandwidth")),
        rtt_(p.duration("rtt")),
        hash_bytes_(p.integer("hash_bytes")),
        edit_salt_(ctx.salt("edits")),
        sent_metric_(ctx.metric("bytes_sent")),
        stored_metric_(ctx.metric("stored_bytes")),
        chunks_metric_(ctx.metric("chunks_uploaded")) {
    const auto users = p.integer<std::size_t>("users");
    const auto files = p.integer<std::size_t>("files");
    const auto size = p.integer<std::size_t>("file_size");
    std::vector<std::vector<std::uint8_t>> originals(files, std::vector<std::uint8_t>(size));
    for (auto& file : originals)
      for (std::size_t i = 0; i < size; i += 8) {
        const std::uint64_t word = ctx.rng().next();
        std::memcpy(file.data() + i, &word, std::min<std::size_t>(8, size - i));
      }
    for (std::size_t u = 0; u < users; ++u)
      for (const auto& file : originals) files_.push_back(file);
    for (const auto& file : files_) {  // the initial state: every copy synced once
      file_sync::Work work;
      upload(file, work);
    }
    reset_stats();
  }

  void handle(const Request& r) override {
    auto& file = files_[r.key % files_.size()];
    edit(file, r.id);
    file_sync::Work work;
    const Upload sent = upload(file, work);
    const bool count = r.arrival >= counting_from_;
    if (count) {
      ++syncs_;
      bytes_sent_ += sent.data;
      manifest_bytes_ += sent.manifest;
      new_chunks_ += sent.chunks;
      work_bytes_ += static_cast<std::int64_t>(work.rolled + work.hashed);
    }
    sent_metric_.add(static_cast<double>(sent.data + sent.manifest));
    chunks_metric_.add(static_cast<double>(sent.chunks));
    const double cpu = ns_per_byte_ * static_cast<double>(work.rolled + work.hashed);
    const double transfer = static_cast<double>(sent.data + sent.manifest) / bandwidth_ * 1e9;
    ctx_.after(round_time(cpu + transfer) + rtt_, [this, r] { ctx_.complete(r, Outcome::ok); });
  }

  Map figures() const override {
    const double syncs = static_cast<double>(syncs_);
    auto per_sync = [&](std::int64_t v) {
      return syncs > 0 ? static_cast<double>(v) / syncs : 0.0;
    };
    return {{"syncs", syncs_},
            {"bytes_sent", bytes_sent_},
            {"bytes_per_sync", per_sync(bytes_sent_)},
            {"manifest_bytes", manifest_bytes_},
            {"chunks_per_sync", per_sync(new_chunks_)},
            {"work_bytes_per_sync", per_sync(work_bytes_)},
            {"stored_bytes", stored_bytes_},
            {"logical_bytes", logical_bytes_},
            {"dedup_ratio", stored_bytes_ > 0 ? static_cast<double>(logical_bytes_) /
                                                    static_cast<double>(stored_bytes_)
                                              : 0.0},
            {"chunk_mean", chunk_sizes_.mean()},
            {"chunk_p50", static_cast<double>(chunk_sizes_.quantile(0.5))},
            {"chunk_p99", static_cast<double>(chunk_sizes_.quantile(0.99))}};
  }

  /// The sync figures restart; the store (stored and logical bytes) is state and stays.
  void reset_stats() override {
    syncs_ = bytes_sent_ = manifest_bytes_ = new_chunks_ = work_bytes_ = 0;
    chunk_sizes_.reset();
    counting_from_ = ctx_.now();
  }

 private:
  struct Upload {
    std::int64_t data = 0, manifest = 0, chunks = 0;
  };

  /// Apply the edit of request `id` to `file`: the same edit in every variant.
  void edit(std::vector<std::uint8_t>& file, std::uint64_t id) const {
    const std::uint64_t h1 = Rng::hash(id ^ edit_salt_), h2 = Rng::hash(h1), h3 = Rng::hash(h2);
    const std::size_t length = 1 + static_cast<std::size_t>(h2 % max_edit_);
    auto kind = static_cast<Edit>(h1 % 3);
    if (kind == Edit::erase && file.size() <= 2 * length) kind = Edit::insert;  // keep it alive
    const std::size_t room = kind == Edit::insert ? file.size() + 1 : file.size() - length + 1;
    const std::size_t at = static_cast<std::size_t>(h3 % std::max<std::size_t>(1, room));
    std::uint64_t bytes = Rng::hash(h3);
    auto next_byte = [&bytes]() {
      bytes = Rng::hash(bytes);
      return static_cast<std::uint8_t>(bytes);
    };
    switch (kind) {
      case Edit::insert: {
        std::vector<std::uint8_t> added(length);
        for (auto& b : added) b = next_byte();
        file.insert(file.begin() + static_cast<std::ptrdiff_t>(at), added.begin(), added.end());
        break;
      }
      case Edit::erase:
        file.erase(file.begin() + static_cast<std::ptrdiff_t>(at),
                   file.begin() + static_cast<std::ptrdiff_t>(at + length));
        break;
      case Edit::overwrite:
        for (std::size_t i = at; i < std::min(file.size(), at + length); ++i) file[i] = next_byte();
        break;
    }
  }

  /// Chunk `file` the variant's way and store what the store lacks: the bytes to upload.
  Upload upload(const std::vector<std::uint8_t>& file, file_sync::Work& work) {
    std::vector<Chunk> chunks;
    switch (variant_) {
      case Variant::whole_file:
        chunks.push_back({0, file.size(), file_sync::content_hash(file.data(), file.size(), work)});
        break;
      case Variant::fixed_blocks:
        chunks = file_sync::fixed_blocks(file, block_, work);
        break;
      case Variant::cdc:
        chunks = chunker_.chunks(file, work);
        break;
    }
    Upload sent;
    if (variant_ != Variant::whole_file)
      sent.manifest = hash_bytes_ * static_cast<std::int64_t>(chunks.size());
    for (const Chunk& c : chunks) {
      chunk_sizes_.record(static_cast<std::int64_t>(c.length));
      if (!store_.insert(c.hash).second) continue;  // the store has it: nothing to send
      sent.data += static_cast<std::int64_t>(c.length);
      ++sent.chunks;
    }
    logical_bytes_ += static_cast<std::int64_t>(file.size());
    stored_bytes_ += sent.data;
    stored_metric_.set(static_cast<double>(stored_bytes_));
    return sent;
  }

  Variant variant_;
  Context& ctx_;
  file_sync::GearChunker chunker_;
  std::size_t block_;
  std::uint64_t max_edit_;
  double ns_per_byte_, bandwidth_;
  Time rtt_;
  std::int64_t hash_bytes_;
  std::uint64_t edit_salt_;
  Metric& sent_metric_;
  Metric& stored_metric_;
  Metric& chunks_metric_;

  std::vector<std::vector<std::uint8_t>> files_;  // every user's copy of every file
  std::unordered_set<std::uint64_t> store_;       // content hashes of the stored chunks
  std::int64_t stored_bytes_ = 0, logical_bytes_ = 0;

  Time counting_from_ = 0;
  std::int64_t syncs_ = 0, bytes_sent_ = 0, manifest_bytes_ = 0, new_chunks_ = 0, work_bytes_ = 0;
  Histogram chunk_sizes_;  // every chunk of every sync (bytes)
};

LessonInfo info() {
  return {
      "file_sync",
      "File sync: whole files and fixed blocks re-send what an insertion shifts; content-defined "
      "chunks send about one chunk",
      "Re-uploading the whole file after every edit sends the whole file for a one-byte change "
      "and stores every version whole. Fixed-size blocks fix overwrites (one block is new), but "
      "an insertion or a deletion shifts every later block boundary: every later block hashes "
      "differently and is sent again, half the file on average.",
      "Content-defined chunking: a rolling hash (Gear, as in FastCDC) over the bytes decides the "
      "boundaries from the content itself, so they move with the content. An edit changes the "
      "chunk it falls in (rarely a neighbour too): about one chunk is sent, and the store, "
      "which keeps each chunk once by its content hash, deduplicates the versions and the "
      "users' identical files.",
      {"Dropbox: 4 MiB blocks, deduplicated by SHA-256, streaming sync (fixed blocks)",
       "rsync: rolling checksum over fixed blocks of the old file (Tridgell and Mackerras, 1996)",
       "LBFS, the low-bandwidth file system: Rabin-fingerprint chunking (Muthitacharoen et al., "
       "SOSP 2001)",
       "FastCDC (Xia et al., USENIX ATC 2016): the Gear hash; restic, Borg, casync, Seafile",
       "Backup deduplication: Data Domain (Zhu et al., FAST 2008)"},
      {{"whole_file", true, "upload the whole file on every change"},
       {"fixed_blocks", true, "fixed-size blocks, upload the blocks the store lacks"},
       {"cdc", false, "content-defined chunks (Gear rolling hash), upload the missing ones"}},
      {{"users", ParamType::integer, 4, "users, each holding a copy of every file", 1, 1000},
       {"files", ParamType::integer, 8, "files per user", 1, 10000},
       {"file_size", ParamType::integer, 131072, "initial size of a file, bytes", 1, 1e9},
       {"block_size", ParamType::integer, 4096, "fixed_blocks: block size, bytes", 1, 1e9},
       {"chunk_target", ParamType::integer, 4096,
        "cdc: mean chunk size, bytes (min target / 4, max 8 x target)", 8, 1e9},
       {"max_edit", ParamType::integer, 64,
        "an edit inserts, deletes or overwrites 1..max_edit "
        "bytes",
        1, 1e6},
       {"hash_ns_per_byte", ParamType::real, 1.0,
        "client CPU per byte rolled or hashed, nanoseconds", 0, 1e6},
       {"bandwidth", ParamType::real, 1.25e6, "upload bandwidth, bytes per second", 1, 1e12},
       {"rtt", ParamType::duration, "50ms", "round trip client <-> server", 0, 60},
       {"hash_bytes", ParamType::integer, 32, "manifest bytes per chunk (a SHA-256)", 0, 1024}},
      {},
      {},
      {{"bytes_sent", MetricSpec::Kind::counter, "bytes uploaded (data + manifests)"},
       {"stored_bytes", MetricSpec::Kind::gauge, "unique bytes in the content store"},
       {"chunks_uploaded", MetricSpec::Kind::counter, "chunks the store lacked"}},
      {{"syncs", Unit::count, "syncs (edits) counted"},
       {"bytes_sent", Unit::bytes, "data bytes uploaded by the syncs"},
       {"bytes_per_sync", Unit::bytes, "mean data bytes uploaded per sync"},
       {"manifest_bytes", Unit::bytes, "chunk hashes sent by the syncs"},
       {"chunks_per_sync", Unit::number, "mean chunks uploaded per sync (new to the store)"},
       {"work_bytes_per_sync", Unit::number, "mean bytes rolled + hashed by the client per sync"},
       {"stored_bytes", Unit::bytes, "unique bytes in the store (initial files + every version)"},
       {"logical_bytes", Unit::bytes, "bytes of every file version synced (initial included)"},
       {"dedup_ratio", Unit::number, "logical_bytes / stored_bytes"},
       {"chunk_mean", Unit::number, "mean chunk size of the syncs, bytes"},
       {"chunk_p50", Unit::number, "median chunk size, bytes"},
       {"chunk_p99", Unit::number, "P99 chunk size, bytes"}},
      /*uses_service_time=*/false};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  static const std::pair<const char*, Variant> variants[] = {
      {"whole_file", Variant::whole_file},
      {"fixed_blocks", Variant::fixed_blocks},
      {"cdc", Variant::cdc}};
  return std::make_unique<FileSync>(variant_value(variant, variants), params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
