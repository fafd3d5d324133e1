// A plugin built against a different SDK ABI version: the host must refuse it.
#include "hldlab/plugin.hpp"

namespace {
const hldlab::PluginDescriptor* descriptor() {
  static const hldlab::PluginDescriptor d{hldlab::kAbiVersion + 998, nullptr};
  return &d;
}
}  // namespace

BOOST_DLL_ALIAS(descriptor, HLDLAB_PLUGIN_ENTRY)
