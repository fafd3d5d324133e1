/// @file new_lesson.hpp
/// @brief `hldlab new-lesson NAME`: scaffold a lesson that builds and passes the contract, in the
/// hldlab tree or as a standalone plugin project.
#pragma once

#include <string>
#include <vector>

namespace hldlab {

/// Create plugins/<name>/ (CMakeLists.txt, lesson.cpp, test_<name>.cpp, README.md) and
/// scripts/<name>.lua under `root`. Returns the files written. Throws std::invalid_argument for
/// a bad name or when any of the files already exists (nothing is overwritten).
std::vector<std::string> create_lesson_skeleton(const std::string& name, const std::string& root);

/// Create a standalone plugin project in `dir`, built against an installed hldlab
/// (find_package(hldlab)): CMakeLists.txt, lesson.cpp, <name>.lua, README.md. Same errors.
std::vector<std::string> create_standalone_lesson(const std::string& name, const std::string& dir);

}  // namespace hldlab
