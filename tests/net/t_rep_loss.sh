#!/usr/bin/env bash
# With 5% random loss at every receiver, a 32 MiB file and 100 small files
# still arrive identical on all three.
set -u
source tests/net/rep_lib.sh
rep_lan 4
for i in 2 3 4; do lan_loss "$i" 5; done
for i in 1 2 3 4; do rep_start "$i"; done
make_random_file "$(rep_drop 1)/big.bin" 32M
make_tree "$(rep_drop 1)/tree" 100
rep_wait_same 180 1 2 3 4
for i in 2 3 4; do no_leftovers "$i"; done
for i in 2 3 4; do [ "$(lan_loss_drops "$i")" -gt 100 ] || rfail "loss rule on box $i dropped nothing"; done
echo "ok: identical at 5% loss (drops: $(lan_loss_drops 2) $(lan_loss_drops 3) $(lan_loss_drops 4)); repairs sent: $(sget 1 .net.repair_packets_out) of $(sget 1 .net.data_packets_out)"
