// Replication (docs/PROTOCOL.md): the node's UDP endpoint and, per share, the
// peers, catalog sync, object fetching (receiver) and serving (sender).
// Everything runs on the daemon's loop thread; store writes go through the
// worker (Ingester::post). One Node per daemon, one Replicator per share.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "result.h"

struct event_base;

namespace shoal {

class Store;
class Ingester;
struct StreamBatch;
class Replicator;
class UdpSocket;

struct NodeOptions {
  std::string bind = "0.0.0.0";
  std::string interface;     // multicast interface name; empty: kernel's choice
  uint16_t port = 7788;      // 0: pick one
  bool multicast = true;
  uint64_t max_rate_bps = 1000000000ULL;
  size_t mtu = 1500;
  std::string node_name;
  uint64_t sender_id = 0;    // persisted identity (never 0)
  uint32_t epoch = 0;        // persisted, bumped at every start (never 0)
  // Tests only: move to a new epoch after this many datagrams per share and
  // epoch (0: the AES-GCM usage limit, crypto.h kRekeyCounter).
  uint64_t rekey_after = 0;
};

// Loads (or creates) this node's sender_id and bumps its persisted epoch, so
// nonces never repeat across restarts. Call before the worker owns `store`.
Status load_identity(Store& store, uint64_t* sender_id, uint32_t* epoch);

struct Want;
// Whether a first request (the whole object) for an object this node sent
// to the group at `sent_ms`, ending with multicast flow seq `last_seq`,
// crossed that DATA: its asker had not read the object's last datagram yet
// (Want::heard), so the object is still in its socket, or it NACKs what it
// lost once it reads on. A request without heard counts only within 20 ms
// of the send, and none does after 1 s (PROTOCOL.md 8.2).
bool want_crossed(const Want& w, uint64_t sent_ms, uint32_t last_seq, uint64_t now_ms);

// A range of an object this node sent to the group as a repair, with the
// multicast flow seq of its datagram and when it went.
struct RepairSent {
  uint32_t begin = 0, end = 0;  // both 0 for a parity fragment
  uint32_t seq = 0;
  uint64_t ms = 0;
  bool parity = false;          // a parity fragment (PARITY) rather than DATA
};
class RangeSet;
// Takes out of `ask` (a NACK's ranges of one object) what `sent` holds that
// its asker cannot have read yet: sent after Want::heard (`heard`, with its
// valid bit), less than 1 s ago. That repair is still in the asker's socket,
// and it NACKs the ranges again if it lost them. Returns the bytes taken out;
// none without heard (PROTOCOL.md 8.2).
uint64_t drop_crossed_repairs(RangeSet& ask, const std::vector<RepairSent>& sent, uint32_t heard,
                              uint64_t now_ms);
// How many parity fragments in `sent` the asker cannot have read yet (the
// rule of drop_crossed_repairs): each one repairs a cell it lacks.
size_t unread_parity(const std::vector<RepairSent>& sent, uint32_t heard, uint64_t now_ms);
// Cells of `cell` bytes (cell i = [i*cell, (i+1)*cell)) that `ask` touches.
size_t cells_touched(const RangeSet& ask, size_t cell);
// Cells of an object of `len` bytes, cut at `cell` bytes, that `got` does
// not cover whole, ascending.
std::vector<uint32_t> missing_cells(const RangeSet& got, uint32_t len, size_t cell);

class Node {
 public:
  // Opens the unicast socket. `reader` serves reads on the loop thread;
  // `worker` takes every store write. Both must outlive the Node.
  static Result<std::unique_ptr<Node>> create(event_base* base, const NodeOptions& opt,
                                              Store* reader, Ingester* worker);
  ~Node();

  // Starts replicating a share with its 32-byte key: joins its group (when
  // multicast is on) and announces. Errors: bad group/interface, duplicate key.
  Status add_share(const ShareConfig& cfg, const std::string& key);
  // A local file version of `share` was stored: tell peers soon.
  void local_version(const std::string& share);
  // Chunks of a large local file being ingested (PROTOCOL.md 8.7): list
  // them to the group and send them ahead of the version.
  void stream_batch(StreamBatch& b);
  // Stops replicating `share` (config reload): leaves its group and abandons
  // its transfers; nothing half-written is published (a publish already
  // queued on the worker completes whole), and chunks it stored are left to
  // GC. False when no such share. Until renew_epoch(), add_share() refuses
  // the removed share's key: its counters would restart in the same epoch.
  bool remove_share(const std::string& share);
  // New [net] max_rate for every share's sender, and for shares added later.
  void set_max_rate(uint64_t bps);
  // True while a removed share's key may not come back (see remove_share).
  bool epoch_spent() const;
  // Persists a new epoch through the worker and, once it is committed, uses
  // it for shares added from then on; `done` runs on the loop thread with the
  // outcome. False (nothing queued, `done` never runs) when the worker is busy.
  bool renew_epoch(std::function<void(Status)> done);

  uint16_t port() const;
  size_t peer_count() const;
  size_t transfers_pending() const;
  nlohmann::json peers_json() const;
  nlohmann::json transfers_json() const;
  nlohmann::json stats_json() const;  // packets, bytes, drops by reason
  // Per share: multicast on, group, static peers, and per peer when it was
  // last heard by multicast and by unicast and its clock offset (doctor).
  nlohmann::json doctor_json() const;

  struct Impl;

 private:
  explicit Node(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shoal
