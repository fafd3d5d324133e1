// libFuzzer target: JSON text -> Value -> parameter-schema validation, workload parsing and
// duration parsing. Any input must give a value or a std::exception, never a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "hldlab/runtime/params.hpp"
#include "hldlab/runtime/results.hpp"
#include "hldlab/runtime/workload_spec.hpp"

using namespace hldlab;

namespace {

Value from_json(const nlohmann::json& j, int depth = 0) {
  if (depth > 64) return Value();
  switch (j.type()) {
    case nlohmann::json::value_t::boolean:
      return Value(j.get<bool>());
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
      return Value(j.get<std::int64_t>());
    case nlohmann::json::value_t::number_float:
      return Value(j.get<double>());
    case nlohmann::json::value_t::string:
      return Value(j.get<std::string>());
    case nlohmann::json::value_t::array: {
      List out;
      for (const auto& item : j) out.push_back(from_json(item, depth + 1));
      return Value(std::move(out));
    }
    case nlohmann::json::value_t::object: {
      Map out;
      for (auto it = j.begin(); it != j.end(); ++it)
        out[it.key()] = from_json(it.value(), depth + 1);
      return Value(std::move(out));
    }
    default:
      return Value();
  }
}

const std::vector<ParamSpec> kSpecs = {
    {"backends", ParamType::integer, 10, "n", 1, 1000},
    {"ratio", ParamType::real, 0.5, "r", 0, 1},
    {"mode", ParamType::string, "fast", "m", 0, 0, {"fast", "safe"}},
    {"timeout", ParamType::duration, "30s", "t", 0, 3600},
    {"checks", ParamType::boolean, true, "b"},
    {"weights", ParamType::number_list, List{}, "w", 0, 10},
    {"required", ParamType::integer, Value(), "r", 0, 10},
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)parse_duration(text);
  } catch (const std::exception&) {
  }
  const auto json = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return 0;
  const Value value = from_json(json);
  (void)to_json(value).dump();
  (void)format_value(value);
  if (value.kind() == Value::Kind::map) {
    try {
      const Params p = validate_params(kSpecs, value.as_map(), "fuzz");
      (void)p.integer("backends");
      (void)p.numbers("weights");
    } catch (const std::exception&) {
    }
  }
  try {
    (void)parse_workload(value);
  } catch (const std::exception&) {
  }
  return 0;
}
