// Parity fragments for repair (Cauchy Reed-Solomon over GF(2^8), ISA-L).
//
// An object of `len` bytes is cut into k cells of `sym` bytes (the last one
// padded with zeros). Parity fragment i (0 <= i < parity_indexes(k)) is a
// combination of all k cells: any e parity fragments with distinct indexes
// rebuild any e missing cells. One parity fragment sent to the group so
// repairs a different lost cell at every receiver that lost one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "result.h"

namespace shoal {

// Objects cut into more cells than this get no parity (a 256 KiB chunk is
// 187 cells at MTU 1500); at least 256 - kMaxParityCells indexes are left.
constexpr size_t kMaxParityCells = 224;

// Cells of an object of `len` bytes at `sym` bytes each (sym >= 1).
constexpr size_t parity_cells(uint32_t len, size_t sym) { return (len + sym - 1) / sym; }

// How many distinct parity indexes an object of k cells has: 256 - k, or 0
// when k is 0 or above kMaxParityCells.
constexpr size_t parity_indexes(size_t k) { return k == 0 || k > kMaxParityCells ? 0 : 256 - k; }

// Writes the parity fragments `indexes` of `obj` (len bytes, sym-byte
// cells): out[r] receives sym bytes for indexes[r]. Fails (writes nothing)
// when k has no parity or an index is out of range.
[[nodiscard]] Status make_parity(const uint8_t* obj, uint32_t len, size_t sym,
                                 std::span<const uint8_t> indexes, uint8_t* const* out);

// Rebuilds the cells `missing` (distinct, < k, any order) of an object cut
// in k cells of sym bytes: cells[j] points to cell j (sym bytes; the last
// cell padded with zeros), which holds the object's bytes unless j is
// missing. parity[r] is fragment indexes[r] (sym bytes); there are at least
// as many as missing cells (the first ones are used). Each rebuilt cell is
// written in place. Fails on bad arguments.
[[nodiscard]] Status recover_cells(uint8_t* const* cells, size_t k, size_t sym,
                                   std::span<const uint32_t> missing,
                                   std::span<const uint8_t> indexes,
                                   const uint8_t* const* parity);

}  // namespace shoal
