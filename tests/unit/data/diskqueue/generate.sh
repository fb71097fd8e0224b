#!/bin/sh
# Regenerates the hand-made diskqueue test vector in this directory (storage.md §2, §3), byte by
# byte with printf. Queue name "vec", max-bytes-per-file 64, three records put, none read, closed.
#
# R1 payload (34 bytes), the example record of storage.md §2:
#    ts 18 ea 3e 32 d7 91 60 39, attempts 00 00, ID "18a3d58aca669000", body "deferred"
# R2 payload (26 bytes): ts 00..01, attempts 00 03, ID "0000000000000001", empty body
# R3 payload (29 bytes): ts 00..02, attempts 00 01, ID "0000000000000002", body "abc"
#
# Placement with max-bytes-per-file 64 (§2.1): R1 at 000000:0 (4+34 = 38 bytes); R2 would end at
# 38+30 = 68 > 64, so it starts segment 000001 at 0; R3 ends at 30+33 = 63 <= 64: 000001:30.
# Metadata: depth 3, read 0,0, write 1,63.
set -e
cd "$(dirname "$0")"
printf '\000\000\000\042\030\352\076\062\327\221\140\071\000\00018a3d58aca669000deferred' \
    >vec.diskqueue.000000.dat
{
    printf '\000\000\000\032\000\000\000\000\000\000\000\001\000\0030000000000000001'
    printf '\000\000\000\035\000\000\000\000\000\000\000\002\000\0010000000000000002abc'
} >vec.diskqueue.000001.dat
printf '3\n0,0\n1,63\n' >vec.diskqueue.meta.dat
