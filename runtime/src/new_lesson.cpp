// Templates for `hldlab new-lesson`. The skeleton is a real, small lesson — a server under
// overload, with an unbounded queue (naive) or load shedding (fix) — so a new author starts from
// something that builds, passes the contract suite and demonstrates a claim.
#include "hldlab/runtime/new_lesson.hpp"

#include <boost/filesystem.hpp>
#include <fstream>
#include <stdexcept>

namespace hldlab {
namespace {

const char* kCMake = R"(hldlab_add_lesson(@NAME@
  SOURCES lesson.cpp
  TESTS test_@NAME@.cpp)
)";

const char* kLesson = R"(// @NAME@: TODO one line on the concept.
//
//   problem:  a server with an unbounded queue accepts everything; under overload the queue
//             grows without end and every request waits behind it (P99 explodes).
//   fix:      shed load: reject (503) when the queue is longer than `queue_limit`, so the
//             requests that are accepted keep a bounded latency.
#include <algorithm>

#include "hldlab/plugin.hpp"
#include "hldlab/server.hpp"

namespace {
using namespace hldlab;

class Shop final : public System {
 public:
  Shop(bool shed, const Params& p, Context& ctx)
      : ctx_(ctx),
        shed_metric_(ctx.metric("shed")),
        // The SDK's queueing server: workers, a FIFO queue, slow-down, kill and restart.
        server_(ctx,
                {.workers = p.integer<int>("workers"),
                 .queue_limit = shed ? p.integer<std::size_t>("queue_limit")
                                     : Server<Request>::Options{}.queue_limit},
                [this](Request& r) { ctx_.complete(r, Outcome::ok); }) {}

  void handle(const Request& r) override {
    if (server_.submit(r, r.service) == Admission::rejected) {
      ++shed_;
      shed_metric_.add(1);
      return ctx_.complete(r, Outcome::rejected);
    }
    max_queue_ = std::max<std::int64_t>(max_queue_, static_cast<std::int64_t>(server_.queued()));
  }

  void inject(const std::string& fault, const Value& p) override {
    if (fault == "slowdown") server_.set_slow(p["factor"].as_double());
  }

  Map figures() const override { return {{"max_queue", max_queue_}, {"shed", shed_}}; }
  void reset_stats() override { max_queue_ = shed_ = 0; }

 private:
  Context& ctx_;
  Metric& shed_metric_;
  Server<Request> server_;
  std::int64_t max_queue_ = 0, shed_ = 0;
};

LessonInfo info() {
  return {"@NAME@",
          "TODO: title",
          "An unbounded queue accepts every request; under overload everyone waits.",
          "Shed load: reject beyond a queue limit so accepted requests stay fast.",
          {"TODO: where this is used in production"},
          {{"unbounded_queue", true, "accept everything"},
           {"load_shedding", false, "reject when the queue is full"}},
          {{"workers", ParamType::integer, 4, "requests served at once", 1, 100000},
           {"queue_limit", ParamType::integer, 20, "queue length before shedding", 0, 1e9}},
          {{"slowdown",
            "multiply the service time",
            {{"factor", ParamType::real, 5.0, "multiplier", 1, 1e6}}}},
          {},
          {{"shed", MetricSpec::Kind::counter, "requests rejected by load shedding"}}};
}

std::unique_ptr<System> build(const std::string& variant, const Params& params, Context& ctx) {
  return std::make_unique<Shop>(variant == "load_shedding", params, ctx);
}

}  // namespace

HLDLAB_LESSON(info, build)
)";

const char* kTest = R"(#include <catch2/catch.hpp>

#include "hldlab_test.hpp"

using namespace hldlab;
using hldlab::testing::row;

TEST_CASE("load shedding keeps the P99 of accepted requests far below the unbounded queue's") {
  // 4 workers x 10 ms = 400 rps of capacity: 500 rps is a 25% overload.
  const auto r = hldlab::testing::run_experiment(
      hldlab::testing::poisson_workload(500, milliseconds(10)), seconds(60),
      {{"@NAME@", "unbounded_queue"}, {"@NAME@", "load_shedding"}});
  CHECK(row(r, "load_shedding").p99 < row(r, "unbounded_queue").p99 / 10);
  CHECK(row(r, "load_shedding").count(Outcome::rejected) > 0);
  CHECK(row(r, "unbounded_queue").count(Outcome::rejected) == 0);
}

TEST_CASE("the @NAME@ script passes all its expectations") {
  const ScriptResult r = hldlab::testing::run_script_file("@NAME@.lua");
  INFO(r.error << r.output);
  REQUIRE(r.exit_code() == 0);
}
)";

const char* kScript = R"(-- @NAME@: an unbounded queue vs load shedding under a traffic spike.
local lab = require "hldlab"

local exp = lab.experiment{ name = "@NAME@", seed = 1, duration = "60s" }
exp:workload{ arrivals = lab.poisson{ rps = 300, spikes = { { at = "20s", duration = "10s", rps = 600 } } },
              service = "10ms" }
exp:add{ lesson = "@NAME@", variant = "unbounded_queue" }
exp:add{ lesson = "@NAME@", variant = "load_shedding" }
exp:at("40s", function(sys) sys:inject("slowdown", { factor = 1.2 }) end)
local r = exp:run()
lab.report(r)
lab.expect(r.load_shedding.p99 < r.unbounded_queue.p99 / 5, "shedding keeps the P99 bounded")
lab.expect(r.load_shedding.rejected > 0, "by rejecting part of the spike")
)";

const char* kReadme = R"(# @NAME@

TODO: the concept in two sentences.

- **Problem (naive `unbounded_queue`)**: ...
- **Fix (`load_shedding`)**: ...
- **Parameters**: `workers`, `queue_limit` (see `hldlab info @NAME@`).
- **Faults**: `slowdown{factor}`.
- **Script**: `hldlab run scripts/@NAME@.lua` — what it shows, with the figures you measured.
)";

const char* kStandaloneCMake =
    R"(# @NAME@: a lesson plugin built out of the hldlab tree, against an installed hldlab.
cmake_minimum_required(VERSION 3.20)
project(@NAME@ LANGUAGES CXX)

find_package(hldlab 0.1 REQUIRED)  # -DCMAKE_PREFIX_PATH=<where hldlab is installed>
hldlab_add_plugin(@NAME@ SOURCES lesson.cpp)
# `cmake --install build` drops the plugin where the installed hldlab loads its lessons.
install(TARGETS @NAME@ LIBRARY DESTINATION ${HLDLAB_PLUGIN_DIR})
)";

const char* kStandaloneReadme = R"(# @NAME@

TODO: the concept in two sentences.

- **Problem (naive `unbounded_queue`)**: ...
- **Fix (`load_shedding`)**: ...

Build against an installed hldlab (`cmake --install build --prefix PREFIX` in the hldlab tree),
then drop the plugin in and run the experiment:

```sh
cmake -S . -B build -DCMAKE_PREFIX_PATH=PREFIX
cmake --build build
cmake --install build            # copies @NAME@.so into PREFIX/lib/hldlab
PREFIX/bin/hldlab info @NAME@
PREFIX/bin/hldlab run @NAME@.lua
```

Without installing: `PREFIX/bin/hldlab --plugins PREFIX/lib/hldlab --plugins build run @NAME@.lua`.
)";

std::string fill(std::string text, const std::string& name) {
  for (std::size_t at; (at = text.find("@NAME@")) != std::string::npos;)
    text.replace(at, 6, name);
  return text;
}

namespace fs = boost::filesystem;
using FileList = std::vector<std::pair<fs::path, const char*>>;

void check_name(const std::string& name) {
  const bool valid =
      !name.empty() && name.size() <= 64 && name[0] >= 'a' && name[0] <= 'z' &&
      name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos;
  if (!valid)
    throw std::invalid_argument("lesson name '" + name +
                                "' must start with a lowercase letter and use only a-z, 0-9 and _");
}

void refuse_existing(const FileList& files) {
  for (const auto& file : files)
    if (fs::exists(file.first))
      throw std::invalid_argument(file.first.string() + " already exists");
}

std::vector<std::string> write_files(const FileList& files, const std::string& name) {
  std::vector<std::string> written;
  for (const auto& [path, text] : files) {
    fs::create_directories(path.parent_path());
    std::ofstream out(path.string());
    out << fill(text, name);
    if (!out) throw std::runtime_error("cannot write " + path.string());
    written.push_back(path.string());
  }
  return written;
}

}  // namespace

std::vector<std::string> create_lesson_skeleton(const std::string& name, const std::string& root) {
  check_name(name);
  const fs::path plugin = fs::path(root) / "plugins" / name;
  const FileList files = {{plugin / "CMakeLists.txt", kCMake},
                          {plugin / "lesson.cpp", kLesson},
                          {plugin / ("test_" + name + ".cpp"), kTest},
                          {plugin / "README.md", kReadme},
                          {fs::path(root) / "scripts" / (name + ".lua"), kScript}};
  refuse_existing(files);
  if (!fs::is_directory(fs::path(root) / "plugins"))
    throw std::invalid_argument(
        root + " has no plugins/ folder: run this from the hldlab source tree or pass --root");
  return write_files(files, name);
}

std::vector<std::string> create_standalone_lesson(const std::string& name, const std::string& dir) {
  check_name(name);
  const fs::path root(dir);
  const FileList files = {{root / "CMakeLists.txt", kStandaloneCMake},
                          {root / "lesson.cpp", kLesson},
                          {root / (name + ".lua"), kScript},
                          {root / "README.md", kStandaloneReadme}};
  refuse_existing(files);
  return write_files(files, name);
}

}  // namespace hldlab
