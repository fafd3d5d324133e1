/// @file trace.hpp
/// @brief Replaying recorded traffic: requests (time, key, size, op) read from a file, streamed
/// so that memory stays flat whatever the trace's length.
///
/// Formats: CSV with a column mapping (as libCacheSim's `-t "time-col=1,obj-id-col=2,..."`),
/// and libCacheSim's binary `oracleGeneral` (24-byte little-endian records: uint32 time in
/// seconds, uint64 object id, uint32 size, int64 next access).
#pragma once

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "hldlab/system.hpp"

namespace hldlab {

struct TraceSpec {
  enum class Format { csv, oracle_general };
  std::string file;  ///< the path (already checked to lie under a --data directory)
  Format format = Format::csv;
  /// CSV columns, from 1; 0: absent. Without a time column (or with `rps`), requests are
  /// evenly spaced at `rps`. Without a size column, every size is 1; without an op column,
  /// the workload's `writes` share decides.
  int time_column = 0, key_column = 1, size_column = 0, op_column = 0;
  bool has_header = false;
  char delimiter = ',';
  double time_unit_ns = 1e9;  ///< nanoseconds per unit of the time column (seconds: 1e9)
  double rps = 0;             ///< > 0: ignore timestamps, replay at this rate in file order

  std::string describe() const;
};

/// One request of a trace. `time` is in nanoseconds from the trace's first request.
struct TraceRecord {
  double time = 0;
  std::uint64_t key = 0;
  std::uint32_t size = 1;
  bool has_op = false;
  Op op = Op::read;
};

/// Reads a trace record by record. Errors (unreadable file, a malformed line) throw
/// std::runtime_error naming the file and the line or record.
class TraceReader {
 public:
  explicit TraceReader(TraceSpec spec);
  /// The next record; false at the end of the file.
  bool next(TraceRecord& record);
  const TraceSpec& spec() const { return spec_; }

 private:
  bool next_csv(TraceRecord& record);
  bool next_binary(TraceRecord& record);
  [[noreturn]] void fail(const std::string& why) const;

  TraceSpec spec_;
  std::ifstream in_;
  std::string line_;
  std::vector<std::string> fields_;
  std::uint64_t position_ = 0;  // line (CSV) or record (binary) number, from 1
  bool started_ = false;
  double first_time_ = 0;
};

}  // namespace hldlab
