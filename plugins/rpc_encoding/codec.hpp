// Two real encodings of the same messages: JSON text and a protobuf-style binary format
// (varints and field tags: tag = field << 3 | wire type; 0 varint, 1 fixed 64 bits,
// 2 length-delimited). Each has an encoder and a decoder; decoding checks what it reads.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace rpc {

/// The small message: an id, a price and a flag.
struct Quote {
  std::uint64_t id = 0;
  double price = 0;
  bool in_stock = false;
  bool operator==(const Quote&) const = default;
};

/// The large nested message: an order with its customer, address and items.
struct Address {
  std::string street, city, zip, country;
  bool operator==(const Address&) const = default;
};
struct Item {
  std::string sku, name;
  std::uint64_t quantity = 0;
  std::uint64_t price_cents = 0;
  bool operator==(const Item&) const = default;
};
struct Order {
  std::uint64_t id = 0;
  std::string customer, email;
  Address address;
  std::vector<Item> items;
  bool paid = false;
  bool operator==(const Order&) const = default;
};

// ---------------------------------------------------------------------------------------------
// Binary (protobuf wire format)

inline void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
inline void put_tag(std::string& out, int field, int wire) {
  put_varint(out, static_cast<std::uint64_t>(field) << 3 | static_cast<std::uint64_t>(wire));
}
inline void put_uint(std::string& out, int field, std::uint64_t v) {
  if (v == 0) return;  // proto3: defaults are not sent
  put_tag(out, field, 0);
  put_varint(out, v);
}
inline void put_bytes(std::string& out, int field, const std::string& s) {
  if (s.empty()) return;
  put_tag(out, field, 2);
  put_varint(out, s.size());
  out += s;
}
inline void put_double(std::string& out, int field, double d) {
  if (d == 0) return;
  put_tag(out, field, 1);
  char bytes[8];
  std::memcpy(bytes, &d, 8);  // little-endian hosts, as protobuf
  out.append(bytes, 8);
}

/// Reads a binary message field by field.
class Reader {
 public:
  Reader(const char* p, std::size_t n) : p_(p), end_(p + n) {}
  bool done() const { return p_ >= end_; }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ >= end_) throw std::runtime_error("binary: truncated varint");
      const auto b = static_cast<unsigned char>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    throw std::runtime_error("binary: varint too long");
  }
  /// The next field's number and wire type.
  void tag(int& field, int& wire) {
    const std::uint64_t t = varint();
    field = static_cast<int>(t >> 3);
    wire = static_cast<int>(t & 7);
  }
  std::string bytes() {
    const std::uint64_t n = varint();
    if (n > static_cast<std::uint64_t>(end_ - p_))
      throw std::runtime_error("binary: truncated bytes");
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  double fixed64() {
    if (end_ - p_ < 8) throw std::runtime_error("binary: truncated fixed64");
    double d;
    std::memcpy(&d, p_, 8);
    p_ += 8;
    return d;
  }
  void skip(int wire) {
    if (wire == 0)
      varint();
    else if (wire == 1)
      fixed64();
    else if (wire == 2)
      bytes();
    else
      throw std::runtime_error("binary: unknown wire type");
  }

 private:
  const char* p_;
  const char* end_;
};

inline std::string encode_binary(const Quote& q) {
  std::string out;
  put_uint(out, 1, q.id);
  put_double(out, 2, q.price);
  put_uint(out, 3, q.in_stock ? 1 : 0);
  return out;
}
inline Quote decode_binary_quote(const std::string& in) {
  Quote q;
  Reader r(in.data(), in.size());
  int field, wire;
  while (!r.done()) {
    r.tag(field, wire);
    if (field == 1 && wire == 0)
      q.id = r.varint();
    else if (field == 2 && wire == 1)
      q.price = r.fixed64();
    else if (field == 3 && wire == 0)
      q.in_stock = r.varint() != 0;
    else
      r.skip(wire);
  }
  return q;
}

inline std::string encode_binary(const Address& a) {
  std::string out;
  put_bytes(out, 1, a.street);
  put_bytes(out, 2, a.city);
  put_bytes(out, 3, a.zip);
  put_bytes(out, 4, a.country);
  return out;
}
inline std::string encode_binary(const Item& i) {
  std::string out;
  put_bytes(out, 1, i.sku);
  put_bytes(out, 2, i.name);
  put_uint(out, 3, i.quantity);
  put_uint(out, 4, i.price_cents);
  return out;
}
inline std::string encode_binary(const Order& o) {
  std::string out;
  put_uint(out, 1, o.id);
  put_bytes(out, 2, o.customer);
  put_bytes(out, 3, o.email);
  put_bytes(out, 4, encode_binary(o.address));  // nested: length-delimited
  for (const Item& i : o.items) put_bytes(out, 5, encode_binary(i));
  put_uint(out, 6, o.paid ? 1 : 0);
  return out;
}
inline Address decode_binary_address(const std::string& in) {
  Address a;
  Reader r(in.data(), in.size());
  int field, wire;
  while (!r.done()) {
    r.tag(field, wire);
    if (wire != 2) {
      r.skip(wire);
      continue;
    }
    std::string s = r.bytes();
    if (field == 1)
      a.street = std::move(s);
    else if (field == 2)
      a.city = std::move(s);
    else if (field == 3)
      a.zip = std::move(s);
    else if (field == 4)
      a.country = std::move(s);
  }
  return a;
}
inline Item decode_binary_item(const std::string& in) {
  Item i;
  Reader r(in.data(), in.size());
  int field, wire;
  while (!r.done()) {
    r.tag(field, wire);
    if (field == 1 && wire == 2)
      i.sku = r.bytes();
    else if (field == 2 && wire == 2)
      i.name = r.bytes();
    else if (field == 3 && wire == 0)
      i.quantity = r.varint();
    else if (field == 4 && wire == 0)
      i.price_cents = r.varint();
    else
      r.skip(wire);
  }
  return i;
}
inline Order decode_binary_order(const std::string& in) {
  Order o;
  Reader r(in.data(), in.size());
  int field, wire;
  while (!r.done()) {
    r.tag(field, wire);
    if (field == 1 && wire == 0)
      o.id = r.varint();
    else if (field == 2 && wire == 2)
      o.customer = r.bytes();
    else if (field == 3 && wire == 2)
      o.email = r.bytes();
    else if (field == 4 && wire == 2)
      o.address = decode_binary_address(r.bytes());
    else if (field == 5 && wire == 2)
      o.items.push_back(decode_binary_item(r.bytes()));
    else if (field == 6 && wire == 0)
      o.paid = r.varint() != 0;
    else
      r.skip(wire);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------
// JSON

inline void json_string(std::string& out, const std::string& s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  out += '"';
}
inline void json_key(std::string& out, const char* k, bool& first) {
  if (!first) out += ',';
  first = false;
  out += '"';
  out += k;
  out += "\":";
}

inline std::string encode_json(const Quote& q) {
  std::string out = "{";
  bool first = true;
  json_key(out, "id", first);
  out += std::to_string(q.id);
  json_key(out, "price", first);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", q.price);  // round-trips exactly
  out += buf;
  json_key(out, "in_stock", first);
  out += q.in_stock ? "true" : "false";
  out += '}';
  return out;
}
inline void encode_json_to(std::string& out, const Address& a) {
  out += '{';
  bool first = true;
  json_key(out, "street", first);
  json_string(out, a.street);
  json_key(out, "city", first);
  json_string(out, a.city);
  json_key(out, "zip", first);
  json_string(out, a.zip);
  json_key(out, "country", first);
  json_string(out, a.country);
  out += '}';
}
inline std::string encode_json(const Order& o) {
  std::string out = "{";
  bool first = true;
  json_key(out, "id", first);
  out += std::to_string(o.id);
  json_key(out, "customer", first);
  json_string(out, o.customer);
  json_key(out, "email", first);
  json_string(out, o.email);
  json_key(out, "address", first);
  encode_json_to(out, o.address);
  json_key(out, "items", first);
  out += '[';
  for (std::size_t k = 0; k < o.items.size(); ++k) {
    const Item& i = o.items[k];
    if (k) out += ',';
    out += '{';
    bool f = true;
    json_key(out, "sku", f);
    json_string(out, i.sku);
    json_key(out, "name", f);
    json_string(out, i.name);
    json_key(out, "quantity", f);
    out += std::to_string(i.quantity);
    json_key(out, "price_cents", f);
    out += std::to_string(i.price_cents);
    out += '}';
  }
  out += ']';
  json_key(out, "paid", first);
  out += o.paid ? "true" : "false";
  out += '}';
  return out;
}

/// A JSON reader for these messages: objects, arrays, strings, numbers, booleans.
class JsonReader {
 public:
  explicit JsonReader(const std::string& s) : p_(s.data()), end_(s.data() + s.size()) {}
  void expect(char c) {
    space();
    if (p_ >= end_ || *p_ != c) throw std::runtime_error(std::string("json: expected '") + c + "'");
    ++p_;
  }
  bool next_is(char c) {
    space();
    return p_ < end_ && *p_ == c;
  }
  /// Reads `,` or stops before `end`: true when another member follows.
  bool more(char end) {
    space();
    if (p_ < end_ && *p_ == end) return false;
    if (p_ < end_ && *p_ == ',') ++p_;
    return true;
  }
  std::string string() {
    expect('"');
    std::string s;
    while (p_ < end_ && *p_ != '"') {
      if (*p_ == '\\') ++p_;
      if (p_ < end_) s += *p_++;
    }
    expect('"');
    return s;
  }
  std::string key() {
    std::string k = string();
    expect(':');
    return k;
  }
  double number() {
    space();
    char* stop = nullptr;
    const double d = std::strtod(p_, &stop);
    if (stop == p_) throw std::runtime_error("json: expected a number");
    p_ = stop;
    return d;
  }
  std::uint64_t integer() {
    space();
    std::uint64_t v = 0;
    const char* start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9')
      v = v * 10 + static_cast<std::uint64_t>(*p_++ - '0');
    if (p_ == start) throw std::runtime_error("json: expected an integer");
    return v;
  }
  bool boolean() {
    space();
    if (end_ - p_ >= 4 && std::memcmp(p_, "true", 4) == 0) {
      p_ += 4;
      return true;
    }
    if (end_ - p_ >= 5 && std::memcmp(p_, "false", 5) == 0) {
      p_ += 5;
      return false;
    }
    throw std::runtime_error("json: expected a boolean");
  }

 private:
  void space() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\t' || *p_ == '\r')) ++p_;
  }
  const char* p_;
  const char* end_;
};

inline Quote decode_json_quote(const std::string& in) {
  Quote q;
  JsonReader j(in);
  j.expect('{');
  while (j.more('}')) {
    const std::string k = j.key();
    if (k == "id")
      q.id = j.integer();
    else if (k == "price")
      q.price = j.number();
    else if (k == "in_stock")
      q.in_stock = j.boolean();
    else
      throw std::runtime_error("json: unknown field " + k);
  }
  j.expect('}');
  return q;
}
inline Order decode_json_order(const std::string& in) {
  Order o;
  JsonReader j(in);
  j.expect('{');
  while (j.more('}')) {
    const std::string k = j.key();
    if (k == "id")
      o.id = j.integer();
    else if (k == "customer")
      o.customer = j.string();
    else if (k == "email")
      o.email = j.string();
    else if (k == "paid")
      o.paid = j.boolean();
    else if (k == "address") {
      j.expect('{');
      while (j.more('}')) {
        const std::string f = j.key();
        std::string v = j.string();
        if (f == "street")
          o.address.street = std::move(v);
        else if (f == "city")
          o.address.city = std::move(v);
        else if (f == "zip")
          o.address.zip = std::move(v);
        else if (f == "country")
          o.address.country = std::move(v);
      }
      j.expect('}');
    } else if (k == "items") {
      j.expect('[');
      while (j.more(']')) {
        Item i;
        j.expect('{');
        while (j.more('}')) {
          const std::string f = j.key();
          if (f == "sku")
            i.sku = j.string();
          else if (f == "name")
            i.name = j.string();
          else if (f == "quantity")
            i.quantity = j.integer();
          else if (f == "price_cents")
            i.price_cents = j.integer();
          else
            throw std::runtime_error("json: unknown item field " + f);
        }
        j.expect('}');
        o.items.push_back(std::move(i));
      }
      j.expect(']');
    } else {
      throw std::runtime_error("json: unknown field " + k);
    }
  }
  j.expect('}');
  return o;
}

/// The example messages: a quote, and an order with `items` items.
inline Quote sample_quote() {
  return {1234567, 19.99, true};
}
inline Order sample_order(int items) {
  Order o{98765432,
          "Ada Lovelace",
          "ada@example.com",
          {"12 Analytical Engine Street", "London", "N1 9GU", "GB"},
          {},
          true};
  for (int k = 0; k < items; ++k)
    o.items.push_back({"SKU-" + std::to_string(100000 + k), "Widget model " + std::to_string(k),
                       static_cast<std::uint64_t>(1 + k % 5),
                       static_cast<std::uint64_t>(199 + 100 * k)});
  return o;
}

}  // namespace rpc
