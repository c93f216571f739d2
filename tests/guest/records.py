#!/usr/bin/env python3
"""Numbered 4 KiB records on a block device, for crash and failover tests.

    records.py write DEV RUNID ACKLOG [COUNT]
        Writes record i (i = 0, 1, ...) to 4 KiB block i of DEV with O_DIRECT
        and O_DSYNC, one write at a time; after each write returned (was
        acknowledged) appends "i ok" to ACKLOG, flushed. Stops after COUNT
        records (default 16384) or when killed / the machine dies.
    records.py check DEV RUNID ACKLOG
        Every record listed in ACKLOG must be on DEV (read with O_DIRECT).
        Prints how many were acknowledged, present, and how many records
        after the last acknowledged one are on DEV too (in flight at the
        crash: allowed either way). Exit 1 if an acknowledged record is
        missing or damaged.

A record is "rdrbd-record RUNID SEQ\\n" repeated to fill the block, so a
stale or torn block never passes for it.
"""
import mmap
import os
import sys

BS = 4096


def record(runid, seq):
    line = f"rdrbd-record {runid} {seq:08d}\n".encode()
    return (line * (BS // len(line) + 1))[:BS]


def write(dev, runid, acklog, count=16384):
    fd = os.open(dev, os.O_WRONLY | os.O_DIRECT | os.O_DSYNC)
    buf = mmap.mmap(-1, BS)  # page aligned, as O_DIRECT wants
    with open(acklog, "a", buffering=1) as log:
        for seq in range(count):
            buf.seek(0)
            buf.write(record(runid, seq))
            if os.pwrite(fd, buf, seq * BS) != BS:
                sys.exit(f"short write at record {seq}")
            log.write(f"{seq} ok\n")  # a line cut short by a crash never counts
            log.flush()
    os.close(fd)


def acked(acklog):
    seqs = set()
    with open(acklog) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 2 and parts[1] == "ok" and line.endswith("\n"):
                seqs.add(int(parts[0]))
    return seqs


def check(dev, runid, acklog):
    seqs = acked(acklog)
    fd = os.open(dev, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, BS)

    def present(seq):
        n = os.preadv(fd, [buf], seq * BS)
        return n == BS and buf[:BS] == record(runid, seq)

    last = max(seqs) if seqs else -1
    missing = [s for s in sorted(seqs) if not present(s)]
    extra = 0
    while present(last + 1 + extra):
        extra += 1
    os.close(fd)
    print(f"acknowledged {len(seqs)} records (0..{last}), missing {len(missing)}"
          f"{': ' + ' '.join(map(str, missing[:20])) if missing else ''}; "
          f"{extra} more after the last acknowledged one")
    if len(seqs) != last + 1:
        print(f"ack log has gaps: {len(seqs)} entries for 0..{last}")
        return 1
    return 1 if missing else 0


def main():
    if len(sys.argv) >= 5 and sys.argv[1] == "write":
        write(sys.argv[2], sys.argv[3], sys.argv[4], *(int(a) for a in sys.argv[5:6]))
        return 0
    if len(sys.argv) == 5 and sys.argv[1] == "check":
        return check(sys.argv[2], sys.argv[3], sys.argv[4])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
