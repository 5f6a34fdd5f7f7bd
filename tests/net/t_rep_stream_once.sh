#!/usr/bin/env bash
# A stream's chunks go to the group once. On a slow link (40 Mbit/s, a
# 64 MiB file takes 13 s) the receivers take the stream over at once and ask
# for their windows; those requests go before the origin's pushes, and the
# pushes, when they resume, must skip every chunk the requests already sent
# to the group, however long ago (PROTOCOL.md 8.7). Before, a chunk sent
# more than 10 s earlier was pushed again: 1.34x the file's bytes here, and
# about 1.4x with 15 receivers in the benchmark.
set -u
source tests/net/rep_lib.sh
rep_lan 3
for i in 1 2 3; do lan_rate "$i" 40mbit; done
for i in 1 2 3; do rep_start "$i" net.max_rate=40mbit; done
peers_of_1() { [ "$(sget 1 .peers)" -ge 2 ]; }
wait_until 15 peers_of_1 || rfail "box 1 does not see its 2 peers"

make_random_file "$(rep_drop 1)/big.bin" 64M
rep_wait_same 120 1 2 3
sleep 2  # anything still queued at the origin would go now
size=$(stat -c %s "$(rep_drop 1)/big.bin")
sent=$(sget 1 .net.data_bytes_out)
pushed=$(sget 1 .net.stream_pushed)
[ "$pushed" -gt 0 ] || rfail "box 1 pushed no chunk of its stream"
[ "$sent" -le $((size * 115 / 100)) ] ||
  rfail "box 1 sent $sent bytes of DATA for a $size-byte file (chunks pushed again: $pushed pushed)"
for i in 2 3; do
  [ "$(sget "$i" .net.objects_bad)" = 0 ] || rfail "box $i: chunks failed their hash"
  no_leftovers "$i"
done
echo "ok: 64 MiB at 40 Mbit/s; DATA sent $sent bytes for $size ($pushed chunks pushed)"
