// The error type moved to core/ (it is the whole project's, not the wire's); this header
// stays so that code written against the installed client API keeps compiling.
#pragma once

#include "core/result.hpp"  // IWYU pragma: export
