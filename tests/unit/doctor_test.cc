#include "doctor.h"

#include <string>
// CppUTest last: its operator-new macro breaks standard headers included after it.
#include <CppUTest/TestHarness.h>

using namespace shoal;

namespace {

constexpr uint64_t kGiB = 1024ull * 1024 * 1024;

Json peer(const char* name, bool active, Json mcast_ms, uint64_t known_ms, Json clock = nullptr,
          bool peer_mcast = true) {
  return Json{{"name", name},           {"addr", "10.0.0.9:7788"}, {"active", active},
              {"last_heard_ms", 42000}, {"known_ms", known_ms},    {"multicast_ms", mcast_ms},
              {"unicast_ms", 300},      {"interval_ms", 1000},     {"peer_multicast", peer_mcast},
              {"clock_offset_ms", clock}};
}

Json net(Json peers, bool multicast = true) {
  return Json{{"share", "docs"}, {"multicast", multicast}, {"group", "239.77.0.1:7700"},
              {"port", 7788},    {"static_peers", Json::array()}, {"peers", peers}};
}

Json share(const char* name, Json net_facts) {
  Json s{{"name", name},
         {"path", std::string("/srv/") + name},
         {"state", "ok"},
         {"key_file", std::string("/etc/shoal/") + name + ".key"},
         {"key_mode", 0600},
         {"disk", {{"path", std::string("/srv/") + name}, {"free_bytes", 10 * kGiB}, {"dev", 1}}},
         {"pending_bytes", 3 * kGiB}};
  if (!net_facts.is_null()) s["net"] = net_facts;
  return s;
}

Json facts(Json shares) {
  return Json{{"ok", true},
              {"store", "ok"},
              {"network", "ok"},
              {"state_disk", {{"path", "/var/lib/shoal"}, {"free_bytes", 10 * kGiB}, {"dev", 1}}},
              {"inotify", {{"max_user_watches", 8192}, {"watches", 7000}, {"dirs", 7100},
                           {"dirs_complete", true}, {"errors", 0}}},
              {"shares", shares}};
}

}  // namespace

TEST_GROUP(Doctor){};

TEST(Doctor, FindingsFromFacts) {
  Json peers = Json::array({peer("box-b", true, 800, 60000, 12.4), peer("box-c", true, nullptr, 60000, -3400),
                            peer("box-d", true, nullptr, 2000), peer("box-e", false, 900, 60000),
                            peer("box-f", true, nullptr, 60000, nullptr, false)});
  Json photos = share("photos", nullptr);
  photos["state"] = "error: no such directory";
  photos["key_mode"] = 0644;
  photos["disk"] = {{"error", "statvfs /srv/photos: No such file or directory"}};
  std::vector<Finding> f = doctor_findings(facts({share("docs", net(peers)), photos}));
  STRCMP_EQUAL(
      "warn: inotify: 7100 watches needed, limit 8192 (87%) -> raise it: sysctl -w "
      "fs.inotify.max_user_watches=65536 and persist it in /etc/sysctl.d/\n"
      "ok: share docs: key file /etc/shoal/docs.key is private (mode 0600)\n"
      "ok: share docs: 10.0 GiB free on /srv/docs, 3.0 GiB pending\n"
      "ok: share docs: multicast from box-b is heard (group 239.77.0.1 port 7700)\n"
      "warn: share docs: multicast from box-c is not heard; replicating by unicast (peers =) -> "
      "check IGMP snooping / firewall for group 239.77.0.1 port 7700\n"
      "ok: share docs: box-d heard for only 2s; multicast not judged yet\n"
      "warn: share docs: peer box-e (10.0.0.9:7788) not heard for 42s -> check that shoald runs "
      "there and that UDP port 7788 is open\n"
      "ok: share docs: box-f has multicast off; unicast is used\n"
      "fail: share photos: error: no such directory -> see shoald's log\n"
      "fail: share photos: key file /etc/shoal/photos.key is open to group or others (mode 0644) "
      "-> chmod 600 /etc/shoal/photos.key\n"
      "warn: share photos: cannot check free space: statvfs /srv/photos: No such file or directory "
      "-> check that /srv/photos exists and shoald can read it\n"
      "ok: clock of box-b is within 1 s (+12 ms)\n"
      "warn: clock of box-c is off by -3.4 s -> sync the clocks (NTP: chrony or "
      "systemd-timesyncd); replication does not need it, but conflict copy names and file times do\n",
      format_findings(f).c_str());
  CHECK_TRUE(findings_need_action(f));
}

TEST(Doctor, HealthyBoxNeedsNothing) {
  Json f = facts({share("docs", net(Json::array({peer("box-b", true, 100, 9000, -2.0)})))});
  f["inotify"]["watches"] = 10;
  f["inotify"]["dirs"] = 12;
  std::vector<Finding> r = doctor_findings(f);
  STRCMP_EQUAL(
      "ok: inotify: 12 watches needed, limit 8192 (0%)\n"
      "ok: share docs: key file /etc/shoal/docs.key is private (mode 0600)\n"
      "ok: share docs: 10.0 GiB free on /srv/docs, 3.0 GiB pending\n"
      "ok: share docs: multicast from box-b is heard (group 239.77.0.1 port 7700)\n"
      "ok: clock of box-b is within 1 s (-2 ms)\n",
      format_findings(r).c_str());
  CHECK_FALSE(findings_need_action(r));
}

TEST(Doctor, DiskTooSmallForPendingTransfers) {
  Json s = share("docs", nullptr);
  s["disk"]["free_bytes"] = 5 * kGiB;  // same file system as the store: needs 2 x 3 GiB
  std::string out = format_findings(doctor_findings(facts({s})));
  STRCMP_CONTAINS("warn: share docs: 5.0 GiB free on /srv/docs, pending transfers need 6.0 GiB -> free space there",
                  out.c_str());
  Json other = facts({s});
  other["state_disk"] = {{"path", "/var/lib/shoal"}, {"free_bytes", kGiB}, {"dev", 2}};
  out = format_findings(doctor_findings(other));
  STRCMP_CONTAINS("ok: share docs: 5.0 GiB free on /srv/docs, 3.0 GiB pending\n", out.c_str());
  STRCMP_CONTAINS("warn: share docs: 1.0 GiB free for the store in /var/lib/shoal, pending transfers need 3.0 GiB",
                  out.c_str());
}

TEST(Doctor, NoPeersSaysWhereToLook) {
  std::string out = format_findings(doctor_findings(facts({share("docs", net(Json::array()))})));
  STRCMP_CONTAINS("warn: share docs: no peers heard -> check that the other boxes run shoald with this "
                  "share's key and that UDP port 7788 and group 239.77.0.1 port 7700 pass firewalls",
                  out.c_str());
  out = format_findings(doctor_findings(facts({share("docs", net(Json::array(), false))})));
  STRCMP_CONTAINS("warn: share docs: no peers heard -> multicast is off: list the other boxes in peers =",
                  out.c_str());
  Json off = facts({share("docs", net(Json::array({peer("box-b", true, nullptr, 9000)}), false))});
  out = format_findings(doctor_findings(off));
  STRCMP_CONTAINS("ok: share docs: box-b is heard by unicast (multicast is off here)\n", out.c_str());
}

TEST(Doctor, DaemonErrorsAndOddFacts) {
  Json f = facts(Json::array());
  f["store"] = "error: database disk image is malformed";
  f["network"] = "error: bind 0.0.0.0:7788: Address in use";
  f["inotify"]["errors"] = 3;
  std::string out = format_findings(doctor_findings(f));
  STRCMP_CONTAINS("fail: store: error: database disk image is malformed -> ", out.c_str());
  STRCMP_CONTAINS("fail: network: error: bind 0.0.0.0:7788: Address in use -> check [net]", out.c_str());
  STRCMP_CONTAINS("warn: watcher: 3 directories could not be watched or read", out.c_str());
  // Peer names come from the network: escaped. Odd types are skipped, not fatal.
  Json evil = facts({share("docs", net(Json::array({peer("x\x1b[2J", true, nullptr, 60000), 5})))});
  out = format_findings(doctor_findings(evil));
  STRCMP_CONTAINS("multicast from x\\x1b[2J is not heard", out.c_str());
  CHECK_TRUE(doctor_findings(Json{{"shares", "odd"}, {"inotify", 3}}).empty());
  CHECK_TRUE(doctor_findings(Json::array()).empty());
}
