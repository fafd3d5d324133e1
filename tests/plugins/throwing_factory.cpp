// A plugin whose Lesson constructor throws: the host must refuse it and go on.
#include "hldlab/plugin.hpp"

namespace {
class Throwing final : public hldlab::Lesson {
 public:
  Throwing() { throw std::runtime_error("constructor exploded"); }
  const hldlab::LessonInfo& info() const override { throw std::logic_error("unreachable"); }
  std::unique_ptr<hldlab::System> build(const std::string&, const hldlab::Params&,
                                        hldlab::Context&) const override {
    return nullptr;
  }
};
}  // namespace

HLDLAB_PLUGIN(Throwing)
