#include "host/ops/pool.h"
