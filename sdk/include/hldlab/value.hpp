/// @file value.hpp
/// @brief Value: the dynamically typed data exchanged between Lua scripts and plugins.
///
/// A Value is nil, a boolean, an integer, a real, a string, a list or a map (string keys).
/// It is what `sys:call(op, args)`, `sys:inject(fault, params)` and lesson result figures carry.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace hldlab {

class Value;
/// Ordered list of values (a Lua sequence).
using List = std::vector<Value>;
/// String-keyed map of values (a Lua table with string keys), ordered by key for determinism.
using Map = std::map<std::string, Value>;

/// @brief A dynamically typed value: nil, bool, int64, double, string, List or Map.
class Value {
 public:
  /// The kinds a Value can hold, in the order of the underlying variant.
  enum class Kind { nil, boolean, integer, real, string, list, map };

  Value() = default;
  Value(std::nullptr_t) {}
  Value(bool b) : v_(b) {}
  Value(int i) : v_(static_cast<std::int64_t>(i)) {}
  Value(std::int64_t i) : v_(i) {}
  Value(std::uint64_t i) : v_(static_cast<std::int64_t>(i)) {}
  Value(double d) : v_(d) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(List l) : v_(std::move(l)) {}
  Value(Map m) : v_(std::move(m)) {}

  Kind kind() const { return static_cast<Kind>(v_.index()); }
  bool is_nil() const { return kind() == Kind::nil; }
  bool is_number() const { return kind() == Kind::integer || kind() == Kind::real; }

  bool as_bool() const { return get<bool>("boolean"); }
  std::int64_t as_int() const {
    if (kind() == Kind::real) {
      double d = std::get<double>(v_);
      if (d != static_cast<double>(static_cast<std::int64_t>(d)))
        throw std::invalid_argument("expected an integer, got " + std::to_string(d));
      return static_cast<std::int64_t>(d);
    }
    return get<std::int64_t>("integer");
  }
  double as_double() const {
    if (kind() == Kind::integer) return static_cast<double>(std::get<std::int64_t>(v_));
    return get<double>("number");
  }
  // On a temporary (`sys.call(...).as_list()`) these return by value: a reference into the
  // temporary would dangle at the end of the full expression, e.g. in a range-for.
  const std::string& as_string() const& { return get<std::string>("string"); }
  const List& as_list() const& { return get<List>("list"); }
  const Map& as_map() const& { return get<Map>("map"); }
  List& as_list() & { return const_cast<List&>(get<List>("list")); }
  Map& as_map() & { return const_cast<Map&>(get<Map>("map")); }
  std::string as_string() && {
    return std::move(const_cast<std::string&>(get<std::string>("string")));
  }
  List as_list() && { return std::move(as_list()); }
  Map as_map() && { return std::move(as_map()); }

  /// Map lookup: the value at `key`, or nil when absent (or when this is not a map).
  const Value& operator[](const std::string& key) const {
    static const Value nil;
    if (kind() != Kind::map) return nil;
    auto it = std::get<Map>(v_).find(key);
    return it == std::get<Map>(v_).end() ? nil : it->second;
  }
  /// Number at `key`, or `fallback` when absent.
  double number_or(const std::string& key, double fallback) const {
    const Value& v = (*this)[key];
    return v.is_nil() ? fallback : v.as_double();
  }
  /// Integer at `key`, or `fallback` when absent.
  std::int64_t int_or(const std::string& key, std::int64_t fallback) const {
    const Value& v = (*this)[key];
    return v.is_nil() ? fallback : v.as_int();
  }

  /// Human-readable kind name ("nil", "boolean", ...), used in error messages.
  static const char* kind_name(Kind k) {
    static const char* names[] = {"nil", "boolean", "integer", "number", "string", "list", "map"};
    return names[static_cast<int>(k)];
  }

  bool operator==(const Value& o) const { return v_ == o.v_; }
  bool operator!=(const Value& o) const { return !(*this == o); }

 private:
  template <class T>
  const T& get(const char* wanted) const {
    if (const T* p = std::get_if<T>(&v_)) return *p;
    throw std::invalid_argument(std::string("expected a ") + wanted + ", got a " +
                                kind_name(kind()));
  }
  std::variant<std::monostate, bool, std::int64_t, double, std::string, List, Map> v_;
};

}  // namespace hldlab
