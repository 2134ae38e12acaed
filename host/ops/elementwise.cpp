#include "host/ops/elementwise.h"
