// Random identifiers for jobs and workers.
#pragma once

#include <string>

namespace ocs::server {

// `length` characters from an alphabet without look-alikes (no 0/o, 1/l, a, e, i, u, y).
std::string RandomIdSuffix(int length);

}  // namespace ocs::server
