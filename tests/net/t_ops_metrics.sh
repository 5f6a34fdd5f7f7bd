#!/usr/bin/env bash
# Prometheus metrics ([control] metrics). Boxes 1 and 2 serve them on their
# namespace's 127.0.0.1:9477 and replicate files of known total size; each
# scrape passes `promtool check metrics` with no finding, and the DATA byte
# counters of sender and receiver lie between the file bytes and 1.5 times
# them (plus 1 MiB for manifests). Only GET /metrics is answered. Box 3 is
# given an address that is not local: it logs the error and keeps running,
# with nothing listening; box 4 has metrics off: nothing listens either.
set -u
source tests/net/rep_lib.sh
rep_lan 4
for t in curl promtool ss; do
  command -v "$t" > /dev/null || fail "running as root but '$t' is not installed (make deps)"
done
M=127.0.0.1:9477
rep_start 1 control.metrics=$M
rep_start 2 control.metrics=$M
rep_start 3 control.metrics=10.99.0.1:9477 group=239.77.0.3:7700  # not in the test LAN
rep_start 4 group=239.77.0.4:7700

make_random_file "$(rep_drop 1)/a.bin" 6M
make_random_file "$(rep_drop 1)/b.bin" 3000001
make_tree "$(rep_drop 1)/tree" 40
rep_wait_same 120 1 2
total=$(find "$(rep_drop 1)" -type f -printf '%s\n' | awk '{s += $1} END {print s}')

scrape() { lan_exec "$1" curl -sS --max-time 5 "http://$M/metrics"; }
# value FILE SERIES: the sample value of SERIES (name with its labels) in FILE.
value() { awk -v s="$2" '$1 == s {print $2; found = 1} END {if (!found) print "none"}' "$1"; }
sum_kinds() {  # FILE NAME: data + repair samples of NAME
  echo $(($(value "$1" "$2{kind=\"data\"}") + $(value "$1" "$2{kind=\"repair\"}")))
}
# The RTT needs a PING round (every 2 s); until then the scrape lacks it.
has_rtt() { scrape "$1" | grep -q "^shoal_peer_rtt_seconds{share=\"s\",peer=\"h$2\"} "; }
wait_until 10 has_rtt 1 2 || rfail "box 1 has no RTT for box 2 in its metrics"
wait_until 10 has_rtt 2 1 || rfail "box 2 has no RTT for box 1 in its metrics"
# Loss: box 2 measures box 1's DATA ("in"); box 1 learns it from box 2's REPORT ("out").
has_loss() { scrape "$1" | grep -q "^shoal_peer_loss_ratio{share=\"s\",peer=\"h$2\",direction=\"$3\"} "; }
wait_until 10 has_loss 2 1 in || rfail "box 2 has no loss ratio for box 1's DATA"
wait_until 10 has_loss 1 2 out || rfail "box 1 has no loss ratio reported by box 2"

for i in 1 2; do
  f=$(rep_dir "$i")/metrics.txt
  scrape "$i" > "$f" || rfail "curl of box $i's metrics failed"
  out=$(promtool check metrics < "$f" 2>&1) || rfail "promtool check metrics on box $i: $out"
  [ -z "$out" ] || rfail "promtool check metrics on box $i has findings: $out"
  [ "$(value "$f" 'shoal_share_bytes{share="s"}')" = "$total" ] || rfail "box $i: share bytes are not $total"
  [ "$(value "$f" 'shoal_peers{share="s"}')" = 1 ] || rfail "box $i: shoal_peers is not 1"
done
echo "ok: metrics of both boxes pass promtool check metrics ($total file bytes replicated)"

m1=$(rep_dir 1)/metrics.txt m2=$(rep_dir 2)/metrics.txt
# in_bounds WHAT DATAGRAM_BYTES PAYLOAD_BYTES: file bytes <= payload <=
# datagram bytes <= 1.5 x file bytes + 1 MiB.
in_bounds() {
  local what=$1 dg=$2 pl=$3 max=$((total * 3 / 2 + 1048576))
  echo "$what: $dg datagram bytes, $pl payload bytes for $total file bytes"
  [ "$pl" -ge "$total" ] || rfail "$what: payload bytes $pl < file bytes $total"
  [ "$dg" -ge "$pl" ] || rfail "$what: datagram bytes $dg < payload bytes $pl"
  [ "$dg" -le "$max" ] || rfail "$what: datagram bytes $dg > $max"
}
in_bounds "box 1 sent (data + repair)" "$(sum_kinds "$m1" shoal_sent_bytes_total)" \
  "$(value "$m1" shoal_sent_payload_bytes_total)"
in_bounds "box 2 received (data + repair)" "$(sum_kinds "$m2" shoal_received_bytes_total)" \
  "$(value "$m2" shoal_received_payload_bytes_total)"
[ "$(value "$m1" shoal_ingest_read_bytes_total)" = "$total" ] || rfail "box 1 did not read each file once"
[ "$(value "$m2" 'shoal_sent_bytes_total{kind="data"}')" = 0 ] || rfail "box 2 sent DATA nobody asked for"
[ "$(value "$m1" 'shoal_sent_packets_total{kind="control"}')" -gt 0 ] || rfail "box 1 sent no control packets"
[ "$(value "$m2" 'shoal_dropped_packets_total{reason="auth"}')" = 0 ] || rfail "box 2 dropped packets for auth"
# Socket counters: box 2 read what box 1 sent, and the kernel-drop counter
# is exported (its value depends on how busy the machine is).
reads2=$(( $(value "$m2" 'shoal_socket_reads_total{gro="yes"}') + $(value "$m2" 'shoal_socket_reads_total{gro="no"}') ))
[ "$reads2" -gt 0 ] || rfail "box 2 counted no socket reads"
calls1=$(( $(value "$m1" 'shoal_socket_send_calls_total{gso="yes"}') + $(value "$m1" 'shoal_socket_send_calls_total{gso="no"}') ))
[ "$calls1" -gt 0 ] || rfail "box 1 counted no send calls"
[ "$(value "$m2" shoal_socket_kernel_drops_total)" != none ] || rfail "box 2 exports no kernel drop counter"
[ "$(sget 2 .net.socket.rx_datagrams)" -gt 0 ] || rfail "status --json lacks net.socket on box 2"
echo "ok: byte counters match the file sizes moved; box 2 read in $reads2 socket reads, box 1 sent in $calls1 calls"

code() { lan_exec 1 curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@"; }
[ "$(code "http://$M/")" = 404 ] || rfail "GET / is not 404"
[ "$(code "http://$M/metrics/x")" = 404 ] || rfail "GET /metrics/x is not 404"
[ "$(code -X POST -d x "http://$M/metrics")" = 405 ] || rfail "POST /metrics is not 405"
[ "$(code -X DELETE "http://$M/metrics")" = 405 ] || rfail "DELETE /metrics is not 405"
lan_exec 1 curl -s -D - -o /dev/null --max-time 5 "http://$M/metrics" |
  grep -qi '^content-type: text/plain; version=0.0.4' || rfail "wrong Content-Type"
echo "ok: only GET /metrics is served (404 for other paths, 405 for other methods)"

grep -q "metrics: cannot listen on 10.99.0.1:9477: Cannot assign requested address; running without metrics" \
  "$(rep_dir 3)/log" || rfail "box 3 did not log why it has no metrics"
ctl 3 status > /dev/null || rfail "box 3 stopped after its metrics failed"
for i in 3 4; do
  [ -z "$(lan_exec "$i" ss -Htln)" ] || rfail "box $i listens on TCP: $(lan_exec "$i" ss -Htln)"
  ! lan_exec "$i" curl -s --max-time 2 "http://$M/metrics" > /dev/null || rfail "box $i answers on $M"
done
grep -q "metrics" "$(rep_dir 4)/log" && rfail "box 4 logged about metrics while they are off"
echo "ok: bind failure is logged and not fatal; with metrics off nothing listens"
