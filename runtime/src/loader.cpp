#include "hldlab/runtime/loader.hpp"

#include <elf.h>

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>
#include <boost/filesystem.hpp>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "hldlab/plugin.hpp"
#include "hldlab/runtime/params.hpp"

#define HLDLAB_STRINGIFY2(x) #x
#define HLDLAB_STRINGIFY(x) HLDLAB_STRINGIFY2(x)

namespace hldlab {
namespace fs = boost::filesystem;

namespace {
bool valid_identifier(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

template <class T>
void check_unique(const std::vector<T>& items, const std::string& what) {
  std::set<std::string> seen;
  for (const auto& item : items) {
    if (!valid_identifier(item.name))
      throw std::invalid_argument(what + " name '" + item.name +
                                  "' must be lowercase letters, digits and underscores");
    if (!seen.insert(item.name).second)
      throw std::invalid_argument("duplicate " + what + " '" + item.name + "'");
  }
}
}  // namespace

void check_lesson_info(const LessonInfo& info) {
  if (!valid_identifier(info.name))
    throw std::invalid_argument("lesson name '" + info.name +
                                "' must be lowercase letters, digits and underscores");
  if (info.variants.empty()) throw std::invalid_argument("lesson declares no variants");
  check_unique(info.variants, "variant");
  check_unique(info.params, "parameter");
  check_unique(info.faults, "fault");
  check_unique(info.operations, "operation");
  check_unique(info.metrics, "metric");
  check_unique(info.figures, "figure");
  for (const auto& m : info.metrics) {
    if (m.label.empty() != m.label_values.empty())
      throw std::invalid_argument("metric '" + m.name +
                                  "' needs both a label and its label_values, or neither");
    if (!m.label.empty() && (!valid_identifier(m.label) || m.label == "experiment" ||
                             m.label == "lesson" || m.label == "variant"))
      throw std::invalid_argument("metric '" + m.name + "' has an invalid label '" + m.label + "'");
  }
  for (const auto& f : info.generic_faults)
    if (f != "latency" && f != "errors" && f != "blackhole" && f != "slow")
      throw std::invalid_argument("generic_faults lists '" + f +
                                  "', which is not a generic fault (latency, errors, blackhole, "
                                  "slow)");
  if (!info.uses_service_time &&
      std::find(info.generic_faults.begin(), info.generic_faults.end(), "slow") !=
          info.generic_faults.end())
    throw std::invalid_argument(
        "the generic fault 'slow' cannot apply to a lesson that does not use the service time");
  validate_params(info.params, {}, info.name);  // every default must pass its own schema
  for (const auto& f : info.faults) {
    for (const auto& v : f.variants)
      if (std::none_of(info.variants.begin(), info.variants.end(),
                       [&](const VariantSpec& s) { return s.name == v; }))
        throw std::invalid_argument("fault '" + f.name + "' names an unknown variant '" + v + "'");
    check_unique(f.params, "fault parameter");
    for (const auto& p : f.params)
      if (!p.default_value.is_nil()) validate_params({p}, {}, "fault " + f.name);
  }
}

/// Why `path` cannot be a complete 64-bit ELF shared library, or "" when it can. Mapping a
/// truncated library makes the dynamic loader touch pages past the end of the file (SIGBUS),
/// so every segment and table the headers announce must lie inside the file.
std::string elf_problem(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot be read";
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::uint64_t>(in.tellg());
  in.seekg(0);
  Elf64_Ehdr header{};
  if (size < sizeof header || !in.read(reinterpret_cast<char*>(&header), sizeof header) ||
      std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0)
    return "not an ELF shared library";
  if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_type != ET_DYN)
    return "not a 64-bit ELF shared library";
  auto inside = [size](std::uint64_t offset, std::uint64_t length) {
    return offset <= size && length <= size - offset;
  };
  if (header.e_phentsize != sizeof(Elf64_Phdr) ||
      !inside(header.e_phoff, std::uint64_t{header.e_phnum} * sizeof(Elf64_Phdr)) ||
      !inside(header.e_shoff, std::uint64_t{header.e_shnum} * header.e_shentsize))
    return "truncated or corrupt (its headers point past the end of the file)";
  in.seekg(static_cast<std::streamoff>(header.e_phoff));
  for (int i = 0; i < header.e_phnum; ++i) {
    Elf64_Phdr segment{};
    if (!in.read(reinterpret_cast<char*>(&segment), sizeof segment)) return "truncated";
    if (segment.p_type == PT_LOAD && !inside(segment.p_offset, segment.p_filesz))
      return "truncated (a segment ends past the end of the file: " + std::to_string(size) +
             " bytes)";
  }
  return "";
}

bool PluginRegistry::load_file(const std::string& path) {
  auto refuse = [&](const std::string& why) {
    errors_.push_back(path + ": " + why);
    return false;
  };
  if (const std::string problem = elf_problem(path); !problem.empty())
    return refuse("cannot be loaded: " + problem);
  std::shared_ptr<boost::dll::shared_library> library;
  try {
    library = std::make_shared<boost::dll::shared_library>(
        path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local);
  } catch (const std::exception& e) {
    return refuse(std::string("cannot be loaded (corrupt or not a shared library): ") + e.what());
  }
  const char* entry = HLDLAB_STRINGIFY(HLDLAB_PLUGIN_ENTRY);
  if (!library->has(entry))
    return refuse("not an hldlab plugin (no '" + std::string(entry) +
                  "' entry; did you forget HLDLAB_PLUGIN(...)?)");
  const PluginDescriptor* descriptor = nullptr;
  try {
    descriptor = library->get_alias<const PluginDescriptor*()>(entry)();
  } catch (const std::exception& e) {
    return refuse(std::string("its entry failed: ") + e.what());
  }
  if (descriptor == nullptr) return refuse("its entry returned no descriptor");
  if (descriptor->abi_version != kAbiVersion)
    return refuse("built against SDK ABI version " + std::to_string(descriptor->abi_version) +
                  ", this hldlab needs " + std::to_string(kAbiVersion) + "; rebuild the plugin");
  std::shared_ptr<const Lesson> lesson;
  try {
    // The deleter owns the library: the code stays mapped until the last user lets go.
    lesson.reset(descriptor->create(), [library](const Lesson* l) { delete l; });
    if (!lesson) return refuse("its factory returned no lesson");
    check_lesson_info(lesson->info());
  } catch (const std::exception& e) {
    return refuse(std::string("invalid lesson: ") + e.what());
  }
  const std::string& name = lesson->info().name;
  auto existing = lessons_.find(name);
  if (existing != lessons_.end())
    return refuse("duplicate lesson '" + name + "' (already loaded from " + existing->second.path +
                  ")");
  lessons_.emplace(name, LoadedLesson{std::move(lesson), path});
  return true;
}

void PluginRegistry::load_directory(const std::string& dir) {
  boost::system::error_code ec;
  if (fs::is_regular_file(dir, ec)) {  // --plugins path/to/lesson.so
    load_file(dir);
    return;
  }
  if (!fs::is_directory(dir, ec)) {
    errors_.push_back(dir + ": no such plugin file or directory");
    return;
  }
  std::vector<std::string> files;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->path().extension() == ".so") files.push_back(it->path().string());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) load_file(f);
}

const LoadedLesson& PluginRegistry::get(const std::string& name) const {
  auto it = lessons_.find(name);
  if (it != lessons_.end()) return it->second;
  std::string known;
  for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("unknown lesson '" + name + "'" + did_you_mean(name, names()) +
                              (known.empty() ? "; no lessons are loaded" : "; known: " + known));
}

std::vector<std::string> PluginRegistry::names() const {
  std::vector<std::string> out;
  for (const auto& entry : lessons_) out.push_back(entry.first);
  return out;
}

std::vector<std::string> plugin_directories(const std::vector<std::string>& from_flags) {
  std::vector<std::string> dirs = from_flags;
  if (const char* env = std::getenv("HLDLAB_PLUGIN_PATH")) {
    std::stringstream in(env);
    for (std::string part; std::getline(in, part, ':');)
      if (!part.empty()) dirs.push_back(part);
  }
  if (dirs.empty()) {
    const fs::path exe_dir = boost::dll::program_location().parent_path();
    for (const fs::path& candidate : {exe_dir / "plugins", exe_dir / ".." / "lib" / "hldlab"}) {
      boost::system::error_code ec;
      if (fs::is_directory(candidate, ec)) {
        dirs.push_back(candidate.lexically_normal().string());
        break;
      }
    }
  }
  return dirs;
}

}  // namespace hldlab
