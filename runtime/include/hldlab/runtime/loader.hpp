/// @file loader.hpp
/// @brief Finds and loads lesson plugins with Boost.DLL, refusing bad ones file by file.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "hldlab/lesson.hpp"

namespace hldlab {

/// A loaded lesson. The shared_ptr keeps its library loaded for as long as it lives.
struct LoadedLesson {
  std::shared_ptr<const Lesson> lesson;
  std::string path;
};

class PluginRegistry {
 public:
  /// Load every `*.so` in `dir` (sorted by name), or `dir` itself when it is a file. Problems are
  /// recorded in errors(), one line per file, and never stop the other files from loading. A
  /// missing directory is an error too.
  void load_directory(const std::string& dir);
  /// Load one file; returns false (and records why) when it is refused. The file is checked
  /// (a complete 64-bit ELF library) before the dynamic loader maps it.
  bool load_file(const std::string& path);

  /// The lesson called `name`, or an exception listing the known lessons ("did you mean").
  const LoadedLesson& get(const std::string& name) const;
  bool has(const std::string& name) const { return lessons_.count(name) > 0; }
  std::vector<std::string> names() const;
  const std::vector<std::string>& errors() const { return errors_; }

 private:
  std::map<std::string, LoadedLesson> lessons_;
  std::vector<std::string> errors_;
};

/// Directories to search, in order: the `--plugins` flags, then HLDLAB_PLUGIN_PATH
/// (colon-separated), then — only if neither gave any — the build/install default next to the
/// executable.
std::vector<std::string> plugin_directories(const std::vector<std::string>& from_flags);

/// Check a lesson's metadata for mistakes (bad name, no variants, duplicate or invalid
/// declarations, defaults that fail their own schema). Throws std::invalid_argument.
void check_lesson_info(const LessonInfo& info);

}  // namespace hldlab
