#!/usr/bin/env bash
# A large file is listed and pushed to the group while its origin is still
# ingesting it (PROTOCOL.md 8.7). With 2% loss at three receivers each takes
# part of it early, takes that over as the version's part file, and ends
# with the file identical and nothing left behind; the sender does not send
# the file twice over. A file that replaces one every box holds goes the
# same way, and no temp file is left once unused streams have expired.
set -u
source tests/net/rep_lib.sh
rep_lan 4
for i in 2 3 4; do lan_loss "$i" 2; done
for i in 1 2 3 4; do rep_start "$i"; done
# The origin lists a file only to receivers it has heard by multicast.
peers_of_1() { [ "$(sget 1 .peers)" -ge 3 ]; }
wait_until 15 peers_of_1 || rfail "box 1 does not see its 3 peers"

make_random_file "$(rep_drop 1)/big.bin" 48M
rep_wait_same 120 1 2 3 4
size=$(stat -c %s "$(rep_drop 1)/big.bin")
pushed=$(sget 1 .net.stream_pushed)
sent=$(sget 1 .net.data_bytes_out)
[ "$pushed" -gt 0 ] || rfail "box 1 pushed no chunk of its stream"
[ "$sent" -le $((size * 3 / 2)) ] || rfail "box 1 sent $sent bytes of DATA for a $size-byte file"
for i in 2 3 4; do
  taken=$(sget "$i" .net.stream_taken)
  adopted=$(sget "$i" .net.streams_adopted)
  [ "$taken" -gt 0 ] || rfail "box $i took no chunk from the stream"
  [ "$adopted" = 1 ] || rfail "box $i: streams_adopted is $adopted, not 1"
  no_leftovers "$i"
  [ "$(sget "$i" .net.objects_bad)" = 0 ] || rfail "box $i: chunks failed their hash"
done
for i in 2 3 4; do [ "$(lan_loss_drops "$i")" -gt 50 ] || rfail "loss rule on box $i dropped nothing"; done
echo "ok: 48 MiB at 2% loss; pushed $pushed chunks, taken early $(sget 2 .net.stream_taken)/$(sget 3 .net.stream_taken)/$(sget 4 .net.stream_taken); DATA sent $sent for $size bytes"

# A file from box 2 reaches everyone; then box 1 replaces it (an update).
make_random_file "$(rep_drop 2)/other.bin" 20M
rep_wait_same 120 2 1 3 4
make_random_file "$(rep_drop 1)/other.bin.new" 20M
mv "$(rep_drop 1)/other.bin.new" "$(rep_drop 1)/other.bin"
rep_wait_same 120 1 2 3 4
sleep 6  # a stream no version took over expires after 5 s
for i in 1 2 3 4; do no_leftovers "$i"; done
[ "$(sget 2 .net.objects_bad)" = 0 ] || rfail "box 2: chunks failed their hash"
echo "ok: a replaced file through its stream; nothing left behind (streams dropped unused: $(sget 2 .net.streams_dropped) $(sget 3 .net.streams_dropped) $(sget 4 .net.streams_dropped))"
