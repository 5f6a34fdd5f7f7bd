// Publishing a received file version into a share folder: the file is
// assembled from the store into ".shoal-tmp-*" in its target directory,
// verified chunk by chunk, fsync'ed, given its mode and mtime, and renamed
// into place; the directory is fsync'ed. Runs on the worker thread that owns
// the writing Store. Never follows a symlink and never writes outside `root`.
#pragma once

#include <string>

#include "manifest.h"
#include "result.h"
#include "store.h"

namespace shoal {

struct PublishRequest {
  std::string share;           // local share name
  std::string root;            // absolute share root
  std::string rel;             // where the file goes (validated here)
  Manifest manifest;           // the version to write (all chunks in the store)
  std::string encoded;         // its encoding (id = manifest_id(encoded))
  std::string move_aside_rel;  // non-empty: an existing file at `rel` is first
                               // renamed to this path (a conflict copy)
  bool record = true;          // commit the FileRecord for `rel` to the store
};

// Writes the file and (if req.record) records it; returns the record (inode
// and dev of the new file, so the watcher's ingest sees it as unchanged).
// Errors: invalid (unsafe path, a symlink or non-directory on the way),
// no_space (free space below the file size, or ENOSPC while writing),
// corrupt (a stored chunk fails its hash), io. On error nothing is left
// behind but directories it created.
Result<FileRecord> publish_file(Store& store, const PublishRequest& req);

// Removes `rel` under `root` if it is a regular file (no symlink traversal).
Status unpublish_file(const std::string& root, const std::string& rel);

// "NAME.shoal-conflict-NODE-YYYYMMDDTHHMMSSZ" for a losing version.
std::string conflict_name(const std::string& rel, const std::string& node, int64_t mtime_ns);

}  // namespace shoal
