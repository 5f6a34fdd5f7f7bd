#include "progress.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "ctl.h"

namespace shoal {
namespace {

constexpr double kRateTauMs = 2000.0;  // smoothing time constant of rates
constexpr size_t kPercentW = 4, kRateW = 12, kEtaW = 8;
constexpr size_t kFixedW = 2 + 2 + kPercentW + 1 + kRateW + 5 + kEtaW;  // " [" "] " pct rate " ETA " eta
constexpr size_t kMinBar = 10, kMaxBar = 50, kMinName = 8;

uint64_t u64_field(const Json& o, const char* key) {
  auto it = o.find(key);
  if (it == o.end()) return 0;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer() && it->get<int64_t>() >= 0) return static_cast<uint64_t>(it->get<int64_t>());
  return 0;
}

std::string str_field(const Json& o, const char* key) {
  auto it = o.find(key);
  return it != o.end() && it->is_string() ? it->get<std::string>() : std::string();
}

size_t width_of(const std::string& s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}

// Byte offset where the code point number `n` starts (s.size() if none).
size_t offset_of(const std::string& s, size_t n) {
  size_t seen = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if ((static_cast<unsigned char>(s[i]) & 0xC0) == 0x80) continue;
    if (seen++ == n) return i;
  }
  return s.size();
}

// Exactly `w` columns: padded, or cut at the front (the file name is at the end).
std::string fit(const std::string& s, size_t w) {
  size_t have = width_of(s);
  if (have <= w) return s + std::string(w - have, ' ');
  if (w <= 3) return std::string(w, '.');
  return "..." + s.substr(offset_of(s, have - (w - 3)));
}

std::string pad_left(const std::string& s, size_t w) {
  size_t have = width_of(s);
  return have >= w ? s : std::string(w - have, ' ') + s;
}

int percent_of(uint64_t done, uint64_t total) {
  if (total == 0) return 0;
  // In double and clamped first: done may exceed total in a malformed reply.
  double pct = static_cast<double>(done) * 100.0 / static_cast<double>(total);
  return static_cast<int>(std::clamp(pct, 0.0, 100.0));
}

std::string rate_of(double rate) {
  if (!(rate >= 0)) return "-";
  // A hostile or corrupt reply can carry any double: clamp before the cast.
  return human_size(static_cast<uint64_t>(std::min(rate, 1e18))) + "/s";
}

std::string eta_of(const ProgressTrack& t) {
  if (t.state == "paused") return "paused";
  if (t.done >= t.total) return "0:00";
  if (t.rate <= 0) return format_eta(-1);
  return format_eta(static_cast<double>(t.total - t.done) / t.rate);
}

// The sum of all transfers, named for the total line.
ProgressTrack total_of(const ProgressState& st) {
  ProgressTrack sum;
  size_t n = st.tracks.size();
  sum.name = "total (" + std::to_string(n) + (n == 1 ? " file)" : " files)");
  for (const auto& [key, t] : st.tracks) {
    sum.done += std::min(t.done, t.total);
    sum.total += t.total;
    if (t.rate >= 0) sum.rate = std::max(sum.rate, 0.0) + t.rate;
  }
  return sum;
}

std::string bar_line(const ProgressTrack& t, size_t name_w, size_t bar_w) {
  int pct = percent_of(t.done, t.total);
  size_t filled = t.total == 0 ? 0 : static_cast<size_t>(
      static_cast<double>(bar_w) * static_cast<double>(std::min(t.done, t.total)) /
      static_cast<double>(t.total));
  return fit(t.name, name_w) + " [" + std::string(filled, '#') + std::string(bar_w - filled, '.') +
         "] " + pad_left(std::to_string(pct) + "%", kPercentW) + " " +
         pad_left(rate_of(t.rate), kRateW) + " ETA " + eta_of(t);
}

std::string plain_line(const ProgressTrack& t) {
  return t.name + " " + std::to_string(percent_of(t.done, t.total)) + "% " + rate_of(t.rate) +
         " ETA " + eta_of(t);
}

}  // namespace

void progress_update(ProgressState* st, const Json& reply, uint64_t now_ms) {
  std::map<std::string, ProgressTrack> next;
  auto list = reply.is_object() ? reply.find("transfers") : reply.end();
  if (list != reply.end() && list->is_array()) {
    for (const Json& j : *list) {
      if (!j.is_object()) continue;
      std::string path = str_field(j, "path");
      std::string key = str_field(j, "share") + '\0' + path;
      ProgressTrack t;
      t.name = display_escape(path);
      t.state = str_field(j, "state");
      t.done = u64_field(j, "done");
      t.total = u64_field(j, "total");
      t.at_ms = now_ms;
      auto old = st->tracks.find(key);
      if (old == st->tracks.end() || t.done < old->second.done) {
        auto bps = j.find("rate_bps");
        if (bps != j.end() && bps->is_number()) t.rate = bps->get<double>() / 8.0;
      } else if (now_ms > old->second.at_ms) {
        double dt = static_cast<double>(now_ms - old->second.at_ms);
        double sample = static_cast<double>(t.done - old->second.done) * 1000.0 / dt;
        double a = 1.0 - std::exp(-dt / kRateTauMs);
        // The daemon's average includes the start (manifest, first burst): only a seed.
        t.rate = !old->second.measured ? sample : old->second.rate + a * (sample - old->second.rate);
        t.measured = true;
      } else {
        t.rate = old->second.rate;
        t.measured = old->second.measured;
        t.at_ms = old->second.at_ms;
      }
      next.emplace(std::move(key), std::move(t));
    }
  }
  st->tracks = std::move(next);
}

std::string format_eta(double seconds) {
  if (!(seconds >= 0) || seconds >= 100.0 * 3600) return "--:--";
  auto s = static_cast<unsigned>(std::ceil(seconds));
  char buf[32];
  if (s < 3600) std::snprintf(buf, sizeof buf, "%u:%02u", s / 60, s % 60);
  else std::snprintf(buf, sizeof buf, "%u:%02u:%02u", s / 3600, s / 60 % 60, s % 60);
  return buf;
}

std::vector<std::string> progress_lines(const ProgressState& st, size_t width) {
  if (st.tracks.empty()) return {"no transfers"};
  ProgressTrack total = total_of(st);
  size_t avail = width > 1 ? width - 1 : 1;  // the last column would wrap on some terminals
  size_t longest = width_of(total.name);
  for (const auto& [key, t] : st.tracks) longest = std::max(longest, width_of(t.name));
  size_t room = avail > kFixedW + kMinBar ? avail - kFixedW - kMinBar : 0;
  size_t name_w = std::min(longest, std::max(kMinName, room));
  size_t bar_w = avail > kFixedW + name_w ? avail - kFixedW - name_w : 0;
  bar_w = std::clamp(bar_w, kMinBar, kMaxBar);
  std::vector<std::string> out;
  for (const auto& [key, t] : st.tracks) out.push_back(bar_line(t, name_w, bar_w));
  out.push_back(bar_line(total, name_w, bar_w));
  for (auto& l : out)
    if (width_of(l) > avail) l.resize(offset_of(l, avail));
  return out;
}

std::vector<std::string> progress_changes(const ProgressState& st, PlainMemo* memo) {
  std::vector<std::string> out;
  if (st.tracks.empty()) {
    if (memo->any) out.push_back("no transfers");
    memo->any = false;
    memo->percent.clear();
    return out;
  }
  std::map<std::string, int> now;
  for (const auto& [key, t] : st.tracks) {
    int pct = percent_of(t.done, t.total);
    now[key] = pct;
    auto it = memo->percent.find(key);
    if (it == memo->percent.end() || it->second != pct) out.push_back(plain_line(t));
  }
  if (!out.empty() && st.tracks.size() > 1) out.push_back(plain_line(total_of(st)));
  memo->percent = std::move(now);
  memo->any = true;
  return out;
}

std::string progress_redraw(const std::vector<std::string>& lines, size_t prev_lines) {
  std::string out;
  if (prev_lines > 0) out += "\x1b[" + std::to_string(prev_lines) + "A";
  out += "\r\x1b[J";
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace shoal
