#include "fec.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>
#include <vector>

#include <CppUTest/TestHarness.h>

using namespace shoal;

namespace {

std::vector<uint8_t> random_bytes(size_t n, std::mt19937& rng) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::vector<uint8_t*> cells_of(std::vector<uint8_t>& img, size_t k, size_t sym) {
  std::vector<uint8_t*> c(k);
  for (size_t j = 0; j < k; j++) c[j] = img.data() + j * sym;
  return c;
}

// Makes `idx` parity fragments of `obj`, loses the cells `lost` from a padded
// image, rebuilds them and returns whether the image equals the object again.
bool round_trip(const std::vector<uint8_t>& obj, size_t sym, const std::vector<uint32_t>& lost,
                const std::vector<uint8_t>& idx) {
  const uint32_t len = static_cast<uint32_t>(obj.size());
  const size_t k = parity_cells(len, sym);
  std::vector<std::vector<uint8_t>> par(idx.size(), std::vector<uint8_t>(sym));
  std::vector<uint8_t*> out;
  for (auto& p : par) out.push_back(p.data());
  if (!make_parity(obj.data(), len, sym, idx, out.data()).ok()) return false;
  std::vector<uint8_t> img(k * sym, 0);
  std::memcpy(img.data(), obj.data(), len);
  for (uint32_t c : lost) std::memset(img.data() + c * sym, 0xA5, sym);
  std::vector<const uint8_t*> in;
  for (auto& p : par) in.push_back(p.data());
  if (!recover_cells(cells_of(img, k, sym).data(), k, sym, lost, idx, in.data()).ok()) return false;
  // The padding of the last cell comes back as zeros too.
  for (size_t i = len; i < img.size(); i++)
    if (img[i] != 0) return false;
  return std::memcmp(img.data(), obj.data(), len) == 0;
}

}  // namespace

TEST_GROUP(Fec){};

TEST(Fec, CellsAndIndexes) {
  CHECK_EQUAL(1u, parity_cells(1, 1408));
  CHECK_EQUAL(1u, parity_cells(1408, 1408));
  CHECK_EQUAL(2u, parity_cells(1409, 1408));
  CHECK_EQUAL(187u, parity_cells(256 * 1024, 1408));
  CHECK_EQUAL(0u, parity_indexes(0));
  CHECK_EQUAL(255u, parity_indexes(1));
  CHECK_EQUAL(69u, parity_indexes(187));
  CHECK_EQUAL(32u, parity_indexes(kMaxParityCells));
  CHECK_EQUAL(0u, parity_indexes(kMaxParityCells + 1));
}

TEST(Fec, RebuildsAnyLostCellsFromAsManyParityFragments) {
  std::mt19937 rng(7);
  const size_t sym = 1408;
  for (uint32_t len : {1u, 100u, 1408u, 1409u, 65536u, 64u * 1024u + 77u, 256u * 1024u}) {
    auto obj = random_bytes(len, rng);
    const size_t k = parity_cells(len, sym);
    for (int trial = 0; trial < 6; trial++) {
      size_t e = 1 + rng() % std::min<size_t>(k, 6);
      std::vector<uint32_t> cells(k);
      std::iota(cells.begin(), cells.end(), 0u);
      std::shuffle(cells.begin(), cells.end(), rng);
      std::vector<uint32_t> lost(cells.begin(), cells.begin() + static_cast<long>(e));
      if (trial == 0) lost.back() = static_cast<uint32_t>(k - 1);  // the padded last cell
      std::sort(lost.begin(), lost.end());
      lost.erase(std::unique(lost.begin(), lost.end()), lost.end());
      std::vector<uint8_t> idx;
      while (idx.size() < lost.size()) {
        uint8_t i = static_cast<uint8_t>(rng() % parity_indexes(k));
        if (std::find(idx.begin(), idx.end(), i) == idx.end()) idx.push_back(i);
      }
      CHECK_TRUE(round_trip(obj, sym, lost, idx));
    }
  }
}

TEST(Fec, EveryCellLostAndTheHighestIndexes) {
  std::mt19937 rng(8);
  const size_t sym = 100;
  auto obj = random_bytes(950, rng);  // 10 cells
  std::vector<uint32_t> lost(10);
  std::iota(lost.begin(), lost.end(), 0u);
  std::vector<uint8_t> idx;
  for (size_t i = parity_indexes(10) - 10; i < parity_indexes(10); i++) idx.push_back(static_cast<uint8_t>(i));
  CHECK_TRUE(round_trip(obj, sym, lost, idx));
}

TEST(Fec, WrongParityGivesWrongBytesNotACrash) {
  std::mt19937 rng(9);
  auto obj = random_bytes(5000, rng);
  const size_t sym = 1000, k = 5;
  std::vector<uint8_t> p(sym);
  uint8_t* out[] = {p.data()};
  const uint8_t idx[] = {3};
  CHECK_TRUE(make_parity(obj.data(), 5000, sym, idx, out).ok());
  p[10] ^= 1;
  std::vector<uint8_t> img(obj);
  std::memset(img.data() + 2 * sym, 0, sym);
  const uint32_t lost[] = {2};
  const uint8_t* in[] = {p.data()};
  CHECK_TRUE(recover_cells(cells_of(img, k, sym).data(), k, sym, lost, idx, in).ok());
  CHECK_FALSE(std::memcmp(img.data(), obj.data(), obj.size()) == 0);  // the chunk's SHA-256 catches it
}

TEST(Fec, RefusesBadArguments) {
  std::vector<uint8_t> obj(3000, 1), p(1000), buf(3000, 0);
  auto img = cells_of(buf, 3, 1000);
  uint8_t* out[] = {p.data(), p.data()};
  const uint8_t* in[] = {p.data(), p.data()};
  const uint8_t too_high[] = {253};  // 3 cells: indexes 0..252
  CHECK_FALSE(make_parity(obj.data(), 3000, 1000, too_high, out).ok());
  CHECK_FALSE(make_parity(obj.data(), 3000, 0, std::span<const uint8_t>(too_high, 0), out).ok());
  std::vector<uint8_t> big(300000, 0);
  const uint8_t zero[] = {0};
  CHECK_FALSE(make_parity(big.data(), 300000, 1000, zero, out).ok());  // 300 cells: no parity
  const uint32_t two[] = {0, 1};
  const uint8_t one_idx[] = {0};
  CHECK_FALSE(recover_cells(img.data(), 3, 1000, two, one_idx, in).ok());  // fewer fragments than cells
  const uint8_t same[] = {4, 4};
  CHECK_FALSE(recover_cells(img.data(), 3, 1000, two, same, in).ok());
  const uint32_t twice[] = {1, 1};
  const uint8_t idx2[] = {0, 1};
  CHECK_FALSE(recover_cells(img.data(), 3, 1000, twice, idx2, in).ok());
  const uint32_t outside[] = {3};
  CHECK_FALSE(recover_cells(img.data(), 3, 1000, outside, one_idx, in).ok());
  CHECK_TRUE(recover_cells(img.data(), 3, 1000, std::span<const uint32_t>(), one_idx, in).ok());
}
