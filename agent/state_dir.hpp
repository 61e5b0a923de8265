// The state directory holds PIN files, key blobs and certificates: another user who could
// write to it, or to a directory above it, could swap files under the agent (a symlink for a
// PIN file, a key blob of their own). keywardd refuses to start on such a directory.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/result.hpp"

namespace keyward::agent {

// Creates `dir` (0700) when missing, then checks it: a real directory (not a symlink), owned
// by `uid`, not writable by group or others; and every directory above it owned by root or
// `uid`, writable by nobody else unless sticky (like /tmp). Errors say how to fix it.
Status secure_state_dir(const std::string& dir, uid_t uid);

}  // namespace keyward::agent
