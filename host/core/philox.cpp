#include "host/core/philox.h"
