#!/usr/bin/env python3
"""Reads `drbdmeta ... dump-md` output (drbd-utils' format) on stdin and
prints the bitmap's set bits (one bit = 4 KiB of data) for guest tests.

    md-bits.py ranges     one line "FIRST LAST" per run of set bits
    md-bits.py extents    one line "EXTENT COUNT" per 4 MiB activity-log
                          extent (1024 bits) with set bits
    md-bits.py count      the number of set bits

Checks the dump's own "# bits-set N;" line against what it counted and
exits 1 (with a message on stderr) if they differ or no bitmap is found.
The bm section holds 64-bit words, "0x<16 hex>;" or "N times 0x<16 hex>;";
bit j of word i is bitmap bit 64 * i + j.
"""
import re
import sys

BITS_PER_EXTENT = 1024  # 4 MiB / 4 KiB


def parse(text):
    m = re.search(r"^bm \{(.*?)^\}", text, re.S | re.M)
    if not m:
        raise ValueError("no 'bm {' section in the dump")
    body = re.sub(r"#[^\n]*", "", m.group(1))
    runs, word = [], 0  # runs of set bits, [first, last]
    for times, value in re.findall(r"(?:(\d+)\s+times\s+)?0x([0-9A-Fa-f]{16})\s*;", body):
        n, v = int(times or 1), int(value, 16)
        if v == (1 << 64) - 1:
            add(runs, 64 * word, 64 * (word + n) - 1)
        elif v:
            for w in range(word, word + n):
                for j in range(64):
                    if v >> j & 1:
                        add(runs, 64 * w + j, 64 * w + j)
        word += n
    claimed = re.search(r"^# bits-set (\d+);", text, re.M)
    return runs, int(claimed.group(1)) if claimed else None


def add(runs, first, last):
    if runs and runs[-1][1] + 1 == first:
        runs[-1][1] = last
    else:
        runs.append([first, last])


def main():
    what = sys.argv[1] if len(sys.argv) > 1 else "ranges"
    try:
        runs, claimed = parse(sys.stdin.read())
    except ValueError as e:
        print(f"md-bits: {e}", file=sys.stderr)
        return 1
    count = sum(last - first + 1 for first, last in runs)
    if claimed is not None and claimed != count:
        print(f"md-bits: the dump says bits-set {claimed}, its bm section has {count}", file=sys.stderr)
        return 1
    if what == "count":
        print(count)
    elif what == "ranges":
        for first, last in runs:
            print(first, last)
    elif what == "extents":
        per = {}
        for first, last in runs:
            for e in range(first // BITS_PER_EXTENT, last // BITS_PER_EXTENT + 1):
                lo, hi = max(first, e * BITS_PER_EXTENT), min(last, (e + 1) * BITS_PER_EXTENT - 1)
                per[e] = per.get(e, 0) + hi - lo + 1
        for e in sorted(per):
            print(e, per[e])
    else:
        print(f"md-bits: unknown mode {what!r} (ranges, extents, count)", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
