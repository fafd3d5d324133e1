/// @file plugin.hpp
/// @brief The one thing a lesson plugin exports: a descriptor reached through HLDLAB_PLUGIN.
///
/// @code
///   class MyLesson final : public hldlab::Lesson { ... };
///   HLDLAB_PLUGIN(MyLesson)
/// @endcode
#pragma once

#include <boost/dll/alias.hpp>

#include "hldlab/lesson.hpp"

namespace hldlab {

/// Bumped whenever a header of the SDK changes in a way that breaks binary compatibility.
/// The host refuses plugins built against another version.
constexpr int kAbiVersion = 3;

/// @brief What the exported entry returns. `abi_version` stays the first member forever, so
/// the host can read it before trusting anything else.
struct PluginDescriptor {
  int abi_version;
  Lesson* (*create)();  ///< a new Lesson, owned by the caller (deleted before the library unloads)
};

}  // namespace hldlab

/// Name of the exported entry point (a function returning const PluginDescriptor*).
#define HLDLAB_PLUGIN_ENTRY hldlab_plugin_v

/// Export `LessonClass` (default-constructible, derived from hldlab::Lesson) as this plugin.
#define HLDLAB_PLUGIN(LessonClass)                                                    \
  namespace hldlab_plugin_detail {                                                    \
  inline ::hldlab::Lesson* create_lesson() {                                          \
    return new LessonClass();                                                         \
  }                                                                                   \
  inline const ::hldlab::PluginDescriptor* descriptor() {                             \
    static const ::hldlab::PluginDescriptor d{::hldlab::kAbiVersion, &create_lesson}; \
    return &d;                                                                        \
  }                                                                                   \
  }                                                                                   \
  BOOST_DLL_ALIAS(hldlab_plugin_detail::descriptor, HLDLAB_PLUGIN_ENTRY)
