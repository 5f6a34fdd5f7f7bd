// Publishing a received file version into a share folder: the file is
// assembled into ".shoal-tmp-*" in its target directory, fsync'ed, given its
// mode and mtime, and renamed into place; the directory is fsync'ed. A large
// version is written while it arrives (PartFile: each verified chunk goes to
// its offsets at once, in the share's ".shoal-parts" directory, which the
// watcher does not watch), so publishing it is only the fsync and the rename;
// otherwise (or for what the PartFile lacks) the chunks come from the store,
// verified again. Runs on the worker thread that owns the writing Store.
// Never follows a symlink and never writes outside `root`.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "flusher.h"
#include "manifest.h"
#include "result.h"
#include "store.h"

namespace shoal {

struct PublishRequest;

// A chunk checked at an offset of a file (a stream's, taken over by a part file).
struct CheckedChunk {
  uint64_t off = 0;
  Hash id{};
  uint32_t len = 0;
};

// A temp file's bytes written since it was last flushed, or its writeback
// started: every 8 MiB, so the fsync that publishes it has little left.
struct WriteBack {
  std::shared_ptr<Flusher> flusher;  // none: writeback only
  uint64_t pending = 0;
  void wrote(int fd, uint64_t len);
};

// Where part files live: a directory of the share root that the watcher
// neither watches nor scans (its name starts with ".shoal-"), so writing a
// large file as it arrives costs no inotify event per write. Removed when it
// holds no part file.
constexpr const char* kPartsDir = ".shoal-parts";

// The temp file of one version while its chunks arrive, and the only copy
// of the chunks written to it (the store keeps no second one): its name
// (".shoal-tmp-part-" and the version id, in kPartsDir, or beside the target
// when that directory is on another file system) stays the same across restarts,
// so a transfer cut short resumes from what the file already holds, each
// chunk checked against its hash. Built on the loop thread (immutable
// layout), then used only by the worker thread. The destructor (any thread,
// last owner) closes it; it removes the file only if discard() was called
// and the file was not renamed into place. Any write error marks it failed
// and removes it: what only it held is then fetched again.
class PartFile {
 public:
  PartFile(std::string root, std::string rel, const Manifest& m, const Hash& mid,
           std::shared_ptr<Flusher> flusher = nullptr);
  ~PartFile();
  PartFile(const PartFile&) = delete;
  PartFile& operator=(const PartFile&) = delete;

  // Worker: opens the temp file (creating `rel`'s directories as needed), or
  // the one an earlier run left, keeping every chunk it holds that matches its
  // hash; reserves the size (ENOSPC fails here, not halfway) and copies in
  // the chunks the store holds. On error the PartFile is unusable.
  Status open(Store& store);
  // Worker: writes a chunk (already verified against `h`) at every offset
  // where the version holds it. True if the file now holds it everywhere;
  // false if it is not in the version or a write failed.
  bool put(const Hash& h, const uint8_t* data, size_t len);
  // Worker: open, and no write failed.
  bool usable() const { return fd_ >= 0 && !failed_; }
  // Any thread (the layout is immutable): where the first copy of chunk `h`
  // goes, or UINT64_MAX if the version does not hold it.
  uint64_t first_offset(const Hash& h) const;
  // Worker: a descriptor of its own onto the file (-1 if not usable), so the
  // loop thread can write arriving DATA straight to its offsets.
  int dup_fd() const;
  // Worker: chunk `h` was written at first_offset(h) by another descriptor;
  // reads it into buf (len bytes) and checks it. True if it matches: it
  // then counts as written there (put() writes any further copies).
  bool check_written(const Hash& h, uint8_t* buf, size_t len);
  // Worker: for a chunk written at first_offset(h) by another descriptor
  // with some of its bytes missing (to be rebuilt from parity): read_first
  // reads its len bytes there into buf; write_first writes n bytes at `at`
  // within it; check_buffer says whether buf (len bytes, what the file holds
  // there now) is chunk h, which then counts as written there.
  bool read_first(const Hash& h, uint8_t* buf, size_t len);
  bool write_first(const Hash& h, const uint8_t* p, size_t n, uint32_t at);
  bool check_buffer(const Hash& h, const uint8_t* buf, size_t len);
  // Worker, before open() (StreamFile::hand_over calls it): chunks this
  // process checked at these offsets of the file now under this part file's
  // name (`st` is its stat). If open() finds that same file (device and
  // inode), it keeps them without reading them again and reads nothing else
  // there; any other file is resumed by hashing every chunk, as after a
  // restart.
  void take_checked(const struct stat& st, std::vector<CheckedChunk> chunks);
  // Worker: chunk `h`, checked by the stream at `off` of the file this part
  // took over (take_checked, and open() found that file), counts as written
  // there without being hashed again, and is read into buf (for its other
  // copies). False if this part took no such file over, or the version does
  // not hold `h` at `off`.
  bool keep_stream_checked(const Hash& h, uint64_t off, uint8_t* buf, size_t len);
  // Worker, after open(): the chunk indexes the file held already.
  const std::vector<uint32_t>& resumed() const { return resumed_; }
  // Any thread: the file goes with this object (the version is done with).
  void discard() { discard_ = true; }
  const std::string& rel() const { return rel_; }
  // The temp name of version `mid`'s part file.
  static std::string name_of(const Hash& mid);
  // Where it is: "ROOT/.shoal-parts/NAME" or beside `rel`. "" before open().
  std::string path() const { return path_; }

 private:
  friend Result<FileRecord> publish_file(Store& store, const PublishRequest& req);
  friend Result<FileRecord> publish_part(Store& store, const PublishRequest& req, PartFile& p);
  void fail(const std::string& why);
  Status fill_missing(Store& store, std::vector<Hash>* lost);

  const std::string root_, rel_;
  // The layout in 44 bytes a chunk (a 256 MiB file: about 170 KiB): chunk
  // i spans [offsets_[i], offsets_[i + 1]); by_hash_ finds the indexes of a
  // hash (several when the file repeats a chunk).
  struct Entry {
    Hash hash;
    uint32_t index;
  };
  std::vector<uint64_t> offsets_;  // one more than there are chunks
  std::vector<Entry> by_hash_;     // sorted by hash
  std::vector<Entry>::const_iterator first_of(const Hash& h) const;
  bool holds(const Entry& e, uint8_t* buf) const;
  uint32_t len_of(uint32_t i) const { return static_cast<uint32_t>(offsets_[i + 1] - offsets_[i]); }
  std::vector<uint8_t> written_;   // per chunk index
  std::vector<uint32_t> resumed_;
  dev_t checked_dev_ = 0;
  ino_t checked_ino_ = 0;
  std::vector<CheckedChunk> checked_;  // take_checked()
  bool took_over_ = false;  // open() found the file take_checked() described
  // Chunk index i was written (or checked where another descriptor wrote
  // it): it counts as in the file, and its bytes toward the next flush.
  void wrote(uint32_t i, size_t len);
  void keep_checked(const struct stat& sb);
  // The entry of `h` at offset `off` with length `len`, or null; *copies
  // (if given) is how many the version holds of `h`.
  const Entry* entry_at(const Hash& h, uint64_t off, size_t len, size_t* copies) const;
  uint64_t size_ = 0;
  WriteBack wb_;
  int dir_ = -1, fd_ = -1;
  std::string name_;     // temp name in dir_
  std::string path_;
  bool in_parts_dir_ = false;  // dir_ is kPartsDir (else rel's directory)
  void gone();           // the file left dir_: kPartsDir goes if empty
  bool failed_ = false;
  bool renamed_ = false;
  std::atomic<bool> discard_{false};
};

// A file a peer is still cutting and hashing, written as its listed chunks
// arrive, before its version exists (PROTOCOL.md 8.7): a temp file where
// the version's part file will be (named as temp files of this process
// are, so a crash leaves nothing the next start keeps). When the version is
// fetched it becomes its part file (hand_over), which keeps the chunks
// checked here without reading them again; otherwise the destructor (any
// thread, last owner) removes it. Built on the loop thread, used by the
// worker.
class StreamFile {
 public:
  StreamFile(std::string root, std::string rel, uint64_t size, std::shared_ptr<Flusher> flusher = nullptr);
  ~StreamFile();
  StreamFile(const StreamFile&) = delete;
  StreamFile& operator=(const StreamFile&) = delete;
  // Worker: creates it (and rel's directories) and reserves `size` bytes.
  Status open();
  // A descriptor of its own onto the file (-1 if not open), for the loop.
  int dup_fd() const;
  // Worker: whether [off, off + len) holds chunk `h` (read into buf); if so
  // it is remembered for hand_over, and its writeback may start (as for a
  // part file's chunks).
  bool check(const Hash& h, uint64_t off, uint8_t* buf, uint32_t len);
  // Worker, before `part` opens: renames it to version `mid`'s part file
  // name in the same directory, unless such a file exists, and tells `part`
  // which chunks were checked in it (PartFile::take_checked). True: the
  // file is no longer ours.
  bool hand_over(PartFile& part, const Hash& mid);

 private:
  const std::string root_, rel_;
  const uint64_t size_;
  const std::string name_;
  int dir_ = -1, fd_ = -1;
  bool in_parts_dir_ = false;
  bool handed_ = false;
  WriteBack wb_;  // of the chunks checked
  // What check() found right, for hand_over (a stream lists at most 8192).
  static constexpr size_t kMaxChecked = 16384;
  std::vector<CheckedChunk> checked_;
};

struct PublishRequest {
  std::string share;           // local share name
  std::string root;            // absolute share root
  std::string rel;             // where the file goes (validated here)
  Manifest manifest;           // the version to write (all chunks in the store)
  std::string encoded;         // its encoding (id = manifest_id(encoded))
  std::string move_aside_rel;  // non-empty: an existing file at `rel` is first
                               // renamed to this path (a conflict copy)
  bool record = true;          // commit the FileRecord for `rel` to the store
  std::shared_ptr<PartFile> part;  // the version written as it arrived, if any
  // Out: chunks the version needs that neither the part nor the store could
  // give (held in a file that changed since): fetch them again.
  mutable std::vector<Hash> lost;
};

// Writes the file and (if req.record) records it; returns the record (inode
// and dev of the new file, so the watcher's ingest sees it as unchanged).
// Errors: invalid (unsafe path, a symlink or non-directory on the way),
// no_space (free space below the file size, or ENOSPC while writing),
// corrupt (a stored chunk fails its hash), io. On error nothing is left
// behind but directories it created.
Result<FileRecord> publish_file(Store& store, const PublishRequest& req);

// Whether `name` is a temp file of a publish that no longer runs: one left by
// an earlier process (a crash, a kill) or in the older name format, or a
// part file (kept for resuming) untouched for `age_sec` >= kPartKeepSec. The
// watcher removes these when it scans.
constexpr int64_t kPartKeepSec = 24 * 3600;
bool is_stale_temp(const std::string& name, int64_t age_sec);

// Removes the stale part files (is_stale_temp) in root's kPartsDir, and the
// directory if that leaves it empty; returns the names removed.
std::vector<std::string> remove_stale_parts(const std::string& root);

// Bytes the disk holds for version `mid`'s part file (left by an earlier
// run): space a resumed transfer needs no more of. 0 if none.
uint64_t part_file_bytes(const std::string& root, const std::string& rel, const Hash& mid);

// Removes `rel` under `root` if it is a regular file (no symlink traversal).
Status unpublish_file(const std::string& root, const std::string& rel);

// "NAME.shoal-conflict-NODE-YYYYMMDDTHHMMSSZ" for a losing version.
std::string conflict_name(const std::string& rel, const std::string& node, int64_t mtime_ns);

}  // namespace shoal
