#include "host/ops/conv.h"
