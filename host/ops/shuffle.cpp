#include "host/ops/shuffle.h"
