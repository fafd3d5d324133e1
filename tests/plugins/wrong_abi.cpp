// A plugin built against another SDK ABI version (999): the host must refuse it.
#include "hldlab/plugin.hpp"

namespace {
const hldlab::PluginDescriptor* descriptor() {
  static const hldlab::PluginDescriptor d{999, nullptr};
  return &d;
}
}  // namespace

BOOST_DLL_ALIAS(descriptor, HLDLAB_PLUGIN_ENTRY)
