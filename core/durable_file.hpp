// Durable file operations: write-to-temp + fsync + rename + fsync of the directory, new
// files that never replace (O_EXCL|O_NOFOLLOW), symlink switches. Each returns a Status naming the path.
#pragma once

#include <string>
#include <string_view>

#include "core/result.hpp"

namespace keyward::files {

// Writes `data` to `path` atomically (temp file in the same directory, fsync, rename, fsync dir).
Status write_atomic(const std::string& path, std::string_view data, unsigned mode = 0644);
// Writes a new file (must not exist) and fsyncs it; the caller fsyncs the directory.
Status write_new(const std::string& path, std::string_view data, unsigned mode = 0644);
// Publishes a new file that never replaces one: `data` goes to a temp file in the same
// directory (mode `mode`), is fsynced, then link(2)ed to `path` (which, unlike rename(2),
// refuses an existing name, so two creators cannot replace each other's file), and the
// directory is fsynced. ErrorCode::key_exists when `path` exists already; a reader never
// sees a partial file.
Status publish_new(const std::string& path, std::string_view data, unsigned mode = 0644);
Status fsync_dir(const std::string& dir);
// Points symlink `link` at `target` in one rename(2) (then fsyncs the directory).
Status switch_symlink(const std::string& link, const std::string& target);
Result<std::string> read_file(const std::string& path, size_t limit = 1 << 20);
Status make_dirs(const std::string& dir, unsigned mode = 0755);

}  // namespace keyward::files
