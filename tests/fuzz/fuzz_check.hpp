// What every fuzz target shares: an invariant check that aborts (libFuzzer then keeps the input).
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                          \
  do {                                                                            \
    if (!(cond)) {                                                                \
      std::fprintf(stderr, "invariant failed at line %d: %s\n", __LINE__, #cond); \
      std::abort();                                                               \
    }                                                                             \
  } while (0)
