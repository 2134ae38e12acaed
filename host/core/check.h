// Errors: one exception type, messages that say what was read, where, and what was expected.
#pragma once
#include <stdexcept>
#include <string>
#include <fmt/format.h>

namespace rf {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// RF_CHECK(cond, "fmt", args...): throws rf::Error with the message and the source location.
#define RF_CHECK(cond, ...)                                                                     \
  do {                                                                                          \
    if (!(cond))                                                                                \
      throw ::rf::Error(fmt::format("{} ({}:{}: check `{}` failed)", fmt::format(__VA_ARGS__), \
                                    __FILE__, __LINE__, #cond));                                \
  } while (0)

#define RF_FAIL(...) throw ::rf::Error(fmt::format(__VA_ARGS__))

}  // namespace rf
