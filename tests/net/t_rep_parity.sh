#!/usr/bin/env bash
# Repair by parity: 6 receivers at 3% random loss each, a 32 MiB file. Every
# copy is identical; the sender answered NACKs with parity fragments, every
# receiver rebuilt lost fragments from them, and no chunk failed its hash.
# The repair datagrams the sender sent are printed against the file's
# packets (with DATA resends they follow the union of all receivers' losses,
# about 17% here; with parity, the unluckiest receiver's).
set -u
source tests/net/rep_lib.sh
N=6
rep_lan $((N + 1))
for i in $(seq 2 $((N + 1))); do lan_loss "$i" 3; done
for i in $(seq 1 $((N + 1))); do rep_start "$i"; done
sleep 2  # peers discover each other before the file appears
make_random_file "$(rep_drop 1)/big.bin" 32M
rep_wait_same 180 1 $(seq 2 $((N + 1)))
for i in $(seq 2 $((N + 1))); do no_leftovers "$i"; done
file_pkts=$(( (32 * 1048576 + 1407) / 1408 ))
sent=$(sget 1 .net.parity.sent)
repairs=$(sget 1 .net.repair_packets_out)
echo "sender: $repairs repair datagrams ($sent of them parity) for a file of $file_pkts packets"
[ "$sent" -gt 0 ] || rfail "the sender sent no parity"
for i in $(seq 2 $((N + 1))); do
  cells=$(sget "$i" .net.parity.cells)
  bad=$(sget "$i" .net.objects_bad)
  echo "box $i: $cells fragments rebuilt from parity, $(lan_loss_drops "$i") datagrams dropped by the loss rule"
  [ "$cells" -gt 0 ] || rfail "box $i rebuilt nothing from parity"
  [ "$bad" -eq 0 ] || rfail "box $i: $bad objects failed their hash"
done
echo "ok: identical on $N boxes at 3% loss, repaired by parity"
