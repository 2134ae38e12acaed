#include "host/ops/linear.h"
