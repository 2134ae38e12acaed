#include "host/ops/batchnorm.h"
