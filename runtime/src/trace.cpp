#include "hldlab/runtime/trace.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace hldlab {
namespace {

/// A key column: a number as it is, anything else (a URL, an object name) hashed.
std::uint64_t key_of(const std::string& text) {
  if (!text.empty() && text.find_first_not_of("0123456789") == std::string::npos &&
      text.size() <= 19)
    return std::strtoull(text.c_str(), nullptr, 10);
  std::uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ULL;
  return h;
}

}  // namespace

std::string TraceSpec::describe() const {
  std::ostringstream out;
  const auto slash = file.find_last_of('/');
  out << "trace " << (slash == std::string::npos ? file : file.substr(slash + 1)) << " ("
      << (format == Format::csv ? "csv" : "oracleGeneral") << ")";
  if (rps > 0)
    out << " at " << rps << " rps";
  else
    out << " at its own timestamps";
  return out.str();
}

TraceReader::TraceReader(TraceSpec spec) : spec_(std::move(spec)) {
  in_.open(spec_.file, std::ios::binary);
  if (!in_) fail(std::string("cannot open it: ") + std::strerror(errno));
  if (spec_.format == TraceSpec::Format::csv && spec_.has_header) {
    std::getline(in_, line_);
    ++position_;
  }
}

void TraceReader::fail(const std::string& why) const {
  std::string where = spec_.file;
  if (position_ > 0)
    where += (spec_.format == TraceSpec::Format::csv ? ":" : " record ") + std::to_string(position_);
  throw std::runtime_error("trace " + where + ": " + why);
}

bool TraceReader::next(TraceRecord& record) {
  const bool got =
      spec_.format == TraceSpec::Format::csv ? next_csv(record) : next_binary(record);
  if (!got) return false;
  if (!started_) {
    started_ = true;
    first_time_ = record.time;
  }
  if (record.time < first_time_) fail("time goes backwards (a trace must be sorted by time)");
  record.time -= first_time_;
  return true;
}

bool TraceReader::next_csv(TraceRecord& record) {
  do {
    if (!std::getline(in_, line_)) return false;
    ++position_;
    if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  } while (line_.empty());
  fields_.clear();
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = line_.find(spec_.delimiter, start);
    fields_.push_back(line_.substr(start, end == std::string::npos ? end : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  auto column = [&](int index, const char* what) -> const std::string& {
    if (index > static_cast<int>(fields_.size()))
      fail(std::string("no ") + what + " column " + std::to_string(index) + " (the line has " +
           std::to_string(fields_.size()) + " fields)");
    return fields_[static_cast<std::size_t>(index - 1)];
  };
  auto number = [&](int index, const char* what) {
    const std::string& text = column(index, what);
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0' || !std::isfinite(v) || v < 0)
      fail(std::string(what) + " '" + text + "' is not a non-negative number");
    return v;
  };
  record = TraceRecord{};
  record.key = key_of(column(spec_.key_column, "key"));
  if (spec_.time_column > 0) record.time = number(spec_.time_column, "time") * spec_.time_unit_ns;
  if (spec_.size_column > 0) {
    const double size = number(spec_.size_column, "size");
    record.size = static_cast<std::uint32_t>(std::clamp(std::round(size), 1.0, 4e9));
  }
  if (spec_.op_column > 0) {
    std::string op = column(spec_.op_column, "op");
    for (char& c : op) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    record.has_op = true;
    if (op == "r" || op == "read" || op == "get" || op == "0")
      record.op = Op::read;
    else if (op == "w" || op == "write" || op == "set" || op == "put" || op == "1")
      record.op = Op::write;
    else
      fail("op '" + op + "' is neither a read (r, read, get, 0) nor a write (w, write, set, put, 1)");
  }
  return true;
}

bool TraceReader::next_binary(TraceRecord& record) {
  unsigned char bytes[24];
  in_.read(reinterpret_cast<char*>(bytes), sizeof bytes);
  if (in_.gcount() == 0) return false;
  ++position_;
  if (in_.gcount() != sizeof bytes)
    fail("truncated: a record has " + std::to_string(in_.gcount()) + " of its 24 bytes");
  auto little = [&](int offset, int length) {
    std::uint64_t v = 0;
    for (int i = length - 1; i >= 0; --i) v = (v << 8) | bytes[offset + i];
    return v;
  };
  record = TraceRecord{};
  record.time = static_cast<double>(little(0, 4)) * 1e9;
  record.key = little(4, 8);
  record.size = static_cast<std::uint32_t>(std::max<std::uint64_t>(1, little(12, 4)));
  return true;
}

}  // namespace hldlab
