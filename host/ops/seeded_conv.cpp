#include "host/ops/seeded_conv.h"
