/// @file plugin.hpp
/// @brief The one thing a lesson plugin exports: a descriptor reached through HLDLAB_LESSON (a
/// metadata function and a factory function) or HLDLAB_PLUGIN (a Lesson class).
///
/// @code
///   LessonInfo info() { return {"my_lesson", "title", ...}; }
///   std::unique_ptr<System> build(const std::string& variant, const Params& p, Context& ctx) {
///     return std::make_unique<MySystem>(variant_value(variant, kinds), p, ctx);
///   }
///   HLDLAB_LESSON(info, build)
/// @endcode
#pragma once

#include <boost/dll/alias.hpp>
#include <memory>
#include <string>
#include <utility>

#include "hldlab/lesson.hpp"

namespace hldlab {

/// Bumped whenever a header of the SDK changes in a way that breaks binary compatibility.
/// The host refuses plugins built against another version.
constexpr int kAbiVersion = 5;

/// @brief What the exported entry returns. `abi_version` stays the first member forever, so
/// the host can read it before trusting anything else.
struct PluginDescriptor {
  int abi_version;
  Lesson* (*create)();  ///< a new Lesson, owned by the caller (deleted before the library unloads)
};

/// @brief A Lesson made of its metadata and a factory function (what HLDLAB_LESSON exports).
class FunctionLesson final : public Lesson {
 public:
  using Build = std::unique_ptr<System> (*)(const std::string& variant, const Params& params,
                                            Context& ctx);
  FunctionLesson(LessonInfo info, Build build) : info_(std::move(info)), build_(build) {}
  const LessonInfo& info() const override { return info_; }
  std::unique_ptr<System> build(const std::string& variant, const Params& params,
                                Context& ctx) const override {
    return build_(variant, params, ctx);
  }

 private:
  LessonInfo info_;
  Build build_;
};

}  // namespace hldlab

/// Name of the exported entry point (a function returning const PluginDescriptor*).
#define HLDLAB_PLUGIN_ENTRY hldlab_plugin_v

#define HLDLAB_PLUGIN_EXPORT(create_expression)                                       \
  namespace hldlab_plugin_detail {                                                    \
  inline ::hldlab::Lesson* create_lesson() {                                          \
    return create_expression;                                                         \
  }                                                                                   \
  inline const ::hldlab::PluginDescriptor* descriptor() {                             \
    static const ::hldlab::PluginDescriptor d{::hldlab::kAbiVersion, &create_lesson}; \
    return &d;                                                                        \
  }                                                                                   \
  }                                                                                   \
  BOOST_DLL_ALIAS(hldlab_plugin_detail::descriptor, HLDLAB_PLUGIN_ENTRY)

/// Export the lesson described by `info_function()` (returning a LessonInfo) and built by
/// `build_function(variant, params, ctx)` (returning a std::unique_ptr<System>).
#define HLDLAB_LESSON(info_function, build_function) \
  HLDLAB_PLUGIN_EXPORT(new ::hldlab::FunctionLesson(info_function(), &build_function))

/// Export `LessonClass` (default-constructible, derived from hldlab::Lesson) as this plugin.
#define HLDLAB_PLUGIN(LessonClass) HLDLAB_PLUGIN_EXPORT(new LessonClass())
