/// @file new_lesson.hpp
/// @brief `hldlab new-lesson NAME`: scaffold a lesson folder that builds and passes the contract.
#pragma once

#include <string>
#include <vector>

namespace hldlab {

/// Create plugins/<name>/ (CMakeLists.txt, lesson.cpp, test_<name>.cpp, README.md) and
/// scripts/<name>.lua under `root`. Returns the files written. Throws std::invalid_argument for
/// a bad name or when any of the files already exists (nothing is overwritten).
std::vector<std::string> create_lesson_skeleton(const std::string& name, const std::string& root);

}  // namespace hldlab
