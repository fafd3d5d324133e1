// A valid shared library without the hldlab entry point: the host must refuse it.
extern "C" __attribute__((visibility("default"))) int some_function() {
  return 42;
}
