// The real libc functions behind every hook, from hooks.def: resolved once (from the library's
// constructor, or the first hook that runs before it), each checked against our own hook so that
// a library loaded twice never calls itself (the hook then answers ENOSYS).
#include <dlfcn.h>
#include <pthread.h>

#include <atomic>

#include "client/preload/library.hpp"

// The hooks, declared from the same list, so that each lookup can compare with our own address.
extern "C" {
#define FWGATE_HOOK(field, symbol, result, parameters) result symbol parameters;
#include "client/preload/hooks.def"
#undef FWGATE_HOOK
}

namespace fwgate::client::preload {

namespace {

RealFunctions g_real;
pthread_once_t g_realOnce = PTHREAD_ONCE_INIT;
std::atomic<bool> g_realReady{false};

template <typename F>
void lookup(F& out, const char* name, void* ours) {
  void* symbol = ::dlsym(RTLD_NEXT, name);
  // RTLD_NEXT finds ourselves again when the library is loaded twice; a libc without the symbol
  // (fcntl64 before glibc 2.28, epoll_pwait2 before 2.35) leaves it null.
  if (symbol == ours) symbol = nullptr;
  out = reinterpret_cast<F>(symbol);
}

void resolveReal() {
#define FWGATE_HOOK(field, symbol, result, parameters) \
  lookup(g_real.field, #symbol, reinterpret_cast<void*>(&::symbol));
#include "client/preload/hooks.def"
#undef FWGATE_HOOK
  g_realReady.store(true, std::memory_order_release);
}

__attribute__((constructor)) void resolveAtLoad() {
  pthread_once(&g_realOnce, resolveReal);
}

}  // namespace

const RealFunctions& real() {
  // Every hook starts here, read() and write() too: one acquire load once resolved.
  if (!g_realReady.load(std::memory_order_acquire)) pthread_once(&g_realOnce, resolveReal);
  return g_real;
}

}  // namespace fwgate::client::preload
