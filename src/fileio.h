// Whole-buffer file I/O: loops over short transfers and EINTR, so callers
// see either every byte moved or an error.
#pragma once

#include <cstddef>
#include <cstdint>

#include "result.h"

namespace shoal {

Status write_all(int fd, const void* p, size_t n);
Status pwrite_all(int fd, const void* p, size_t n, uint64_t off);
// Errc::io also when the file ends before `n` bytes.
Status pread_all(int fd, void* p, size_t n, uint64_t off);

}  // namespace shoal
