#include "host/ops/loss.h"
