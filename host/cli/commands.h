// The `reframe` subcommands' options and entry points (one file per command in host/cli/).
#pragma once
#include <string>
#include <vector>

namespace rf {

struct ModelsOptions {
  std::vector<std::string> models;  // empty: MODELS.md's table
  int input = 32, classes = 10, batch = 1;
  bool json = false, layers = false;
};
int cmd_models(const ModelsOptions& o);

}  // namespace rf
