#include "fec.h"

#include <isa-l/erasure_code.h>

#include <algorithm>
#include <memory>
#include <vector>

namespace shoal {

namespace {

// Coefficient of data cell j in parity fragment i of a k-cell object: the
// Cauchy matrix 1 / (x_i + y_j) with x_i = k + i and y_j = j, disjoint sets
// in GF(2^8) (k + i <= 255), so every square part of it can be inverted.
uint8_t coef(size_t k, size_t i, size_t j) {
  return gf_inv(static_cast<uint8_t>((k + i) ^ j));
}

// out[r] = sum over c of m[r * n + c] * in[c], sym bytes each (ISA-L).
void apply(const std::vector<uint8_t>& m, size_t rows, size_t n, size_t sym,
           const uint8_t* const* in, uint8_t* const* out) {
  std::vector<uint8_t> tables(32 * rows * n);
  ec_init_tables(static_cast<int>(n), static_cast<int>(rows), const_cast<uint8_t*>(m.data()), tables.data());
  ec_encode_data(static_cast<int>(sym), static_cast<int>(n), static_cast<int>(rows), tables.data(),
                 const_cast<uint8_t**>(in), const_cast<uint8_t**>(out));
}

}  // namespace

Status make_parity(const uint8_t* obj, uint32_t len, size_t sym, std::span<const uint8_t> indexes,
                   uint8_t* const* out) {
  if (sym == 0 || len == 0 || indexes.empty()) return make_error(Errc::invalid, "parity: nothing to make");
  const size_t k = parity_cells(len, sym);
  const size_t n = parity_indexes(k);
  for (uint8_t i : indexes)
    if (i >= n) return make_error(Errc::invalid, "parity: index out of range");
  // The last cell, padded with zeros to sym bytes.
  auto last = std::make_unique<uint8_t[]>(sym);
  const size_t tail = len - (k - 1) * sym;
  std::copy_n(obj + (k - 1) * sym, tail, last.get());
  std::vector<const uint8_t*> in(k);
  for (size_t j = 0; j + 1 < k; j++) in[j] = obj + j * sym;
  in[k - 1] = last.get();
  std::vector<uint8_t> m(indexes.size() * k);
  for (size_t r = 0; r < indexes.size(); r++)
    for (size_t j = 0; j < k; j++) m[r * k + j] = coef(k, indexes[r], j);
  apply(m, indexes.size(), k, sym, in.data(), out);
  return {};
}

Status recover_cells(uint8_t* const* cells, size_t k, size_t sym, std::span<const uint32_t> missing,
                     std::span<const uint8_t> indexes, const uint8_t* const* parity) {
  const size_t e = missing.size();
  const size_t n = parity_indexes(k);
  if (e == 0) return {};
  if (sym == 0 || n == 0 || e > k || indexes.size() < e)
    return make_error(Errc::invalid, "parity: cannot recover these cells");
  std::vector<bool> lost(k, false);
  for (uint32_t c : missing) {
    if (c >= k || lost[c]) return make_error(Errc::invalid, "parity: bad missing cell");
    lost[c] = true;
  }
  for (size_t r = 0; r < e; r++) {
    if (indexes[r] >= n) return make_error(Errc::invalid, "parity: index out of range");
    for (size_t q = 0; q < r; q++)
      if (indexes[q] == indexes[r]) return make_error(Errc::invalid, "parity: repeated index");
  }
  // Syndromes: s_r = parity_r + the present cells' share of it, which
  // leaves the missing cells' share: s = A x, A[r][c] = coef(indexes[r], missing[c]).
  const size_t present = k - e;
  std::vector<const uint8_t*> in;
  in.reserve(k);
  for (size_t j = 0; j < k; j++)
    if (!lost[j]) in.push_back(cells[j]);
  for (size_t r = 0; r < e; r++) in.push_back(parity[r]);
  std::vector<uint8_t> m(e * k, 0);
  for (size_t r = 0; r < e; r++) {
    size_t col = 0;
    for (size_t j = 0; j < k; j++)
      if (!lost[j]) m[r * k + col++] = coef(k, indexes[r], j);
    m[r * k + present + r] = 1;
  }
  auto syn = std::make_unique_for_overwrite<uint8_t[]>(e * sym);
  std::vector<uint8_t*> sp(e);
  for (size_t r = 0; r < e; r++) sp[r] = syn.get() + r * sym;
  apply(m, e, k, sym, in.data(), sp.data());
  // x = A^-1 s, written into the missing cells.
  std::vector<uint8_t> a(e * e), inv(e * e);
  for (size_t r = 0; r < e; r++)
    for (size_t c = 0; c < e; c++) a[r * e + c] = coef(k, indexes[r], missing[c]);
  if (gf_invert_matrix(a.data(), inv.data(), static_cast<int>(e)) != 0)
    return make_error(Errc::internal, "parity: singular matrix");
  std::vector<uint8_t*> outs(e);
  for (size_t c = 0; c < e; c++) outs[c] = cells[missing[c]];
  apply(inv, e, e, sym, sp.data(), outs.data());
  return {};
}

}  // namespace shoal
