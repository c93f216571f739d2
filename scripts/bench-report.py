#!/usr/bin/env python3
"""The report of `make bench` (scripts/bench.sh): reads the guest outputs of
one or more runs (lines "BENCH <driver> <workload> <value> <unit>"), takes
the median of each figure over the runs, and prints, per workload, raw disk,
link-derived physical limit, C DRBD and rdrbd under protocols C and A with
the ratios rdrbd/C and figure/limit. Writes the same table as Markdown
(summary.md) and a chart (bench.png) next to the first input file.

The physical limit of a figure: for write throughput the lower of the raw
disk's figure for the same workload and the link's stream rate (in the
workload's unit); for reads the raw disk; for the QD1 write latency the raw
disk's latency plus one link round trip; for resync and full sync the lower
of the link and the raw disk's sequential write."""

import collections
import os
import statistics
import sys

WORKLOADS = [
    # key, label, unit, higher is better, block bytes (IOPS from MB/s)
    ("randwrite-4k-qd1", "4 KiB random write QD1", "IOPS", True, 4096),
    ("randwrite-4k-qd1-lat", "4 KiB random write QD1, mean latency", "µs", False, None),
    ("randwrite-4k-qd8", "4 KiB random write QD8", "IOPS", True, 4096),
    ("randwrite-4k-qd32", "4 KiB random write QD32", "IOPS", True, 4096),
    ("randread-4k-qd32", "4 KiB random read QD32", "IOPS", True, None),
    ("seqwrite-1m-qd4", "1 MiB sequential write QD4", "MB/s", True, 0),
    ("randwrite-4k-al", "4 KiB random write QD8 over 256 AL extents, al-extents 67 (protocol C)", "IOPS", True, 4096),
    ("resync-64m", "resync of 64 MiB changed while disconnected", "MB/s", True, 0),
    ("fullsync-default", "full initial sync, default resync options", "MB/s", True, 0),
    ("fullsync-fixed400m", "full initial sync, fixed rate 400M", "MB/s", True, 0),
]


def read_runs(paths):
    runs = collections.defaultdict(list)
    for path in paths:
        for line in open(path, encoding="utf-8", errors="replace"):
            parts = line.split()
            if len(parts) == 5 and parts[0] == "BENCH":
                _, driver, workload, value, _unit = parts
                try:
                    runs[(driver, workload)].append(float(value))
                except ValueError:
                    pass
    return {k: statistics.median(v) for k, v in runs.items()}


def limit_of(fig, key, higher, block):
    link_mbs = fig.get(("link", "stream"))
    rtt = fig.get(("link", "rtt"))
    if key == "randwrite-4k-qd1-lat":
        raw = fig.get(("raw", key))
        return raw + rtt if raw is not None and rtt is not None else None
    if key == "randread-4k-qd32":
        return fig.get(("raw", key))
    if key.startswith(("resync", "fullsync")):
        raw = fig.get(("raw", "seqwrite-1m-qd4"))
        cands = [v for v in (link_mbs, raw) if v]
        return min(cands) if cands else None
    raw = fig.get(("raw", key))
    link = None
    if link_mbs is not None and block is not None:
        link = link_mbs * 1e6 / block if block else link_mbs
    cands = [v for v in (raw, link) if v]
    return min(cands) if cands else None


def fmt(v):
    if v is None:
        return "—"
    return f"{v:,.0f}" if v >= 100 else f"{v:,.1f}"


def ratio(a, b):
    return f"{a / b:.2f}" if a is not None and b else ""


def main(paths):
    fig = read_runs(paths)
    n = len(paths)
    rows = []
    for key, label, unit, higher, block in WORKLOADS:
        lim = limit_of(fig, key, higher, block)
        row = {"label": f"{label}, {unit}" + ("" if higher else " (lower is better)"), "key": key,
               "raw": fig.get(("raw", key)), "limit": lim, "higher": higher}
        for proto in ("C", "A"):
            suffix = f"-proto{proto}" if not key.startswith(("resync", "fullsync")) else ""
            if proto == "A" and suffix == "":
                row["C-drbd A"] = row["rdrbd A"] = None
                continue
            row[f"C-drbd {proto}"] = fig.get((f"C-drbd{suffix}", key))
            row[f"rdrbd {proto}"] = fig.get((f"rdrbd{suffix}", key))
        rows.append(row)

    link = fig.get(("link", "stream")), fig.get(("link", "rtt"))
    header = ("| workload | raw disk | limit | C DRBD, C | rdrbd, C | rdrbd/C DRBD (C) | rdrbd/limit (C) "
              "| C DRBD, A | rdrbd, A | rdrbd/C DRBD (A) |")
    lines = [f"Median of {n} run(s). Link: {fmt(link[0])} MB/s stream, {fmt(link[1])} µs round trip.", "",
             header, "|" + "---|" * (header.count("|") - 1)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["label"], fmt(r["raw"]), fmt(r["limit"]), fmt(r["C-drbd C"]), fmt(r["rdrbd C"]),
            ratio(r["rdrbd C"], r["C-drbd C"]), ratio(r["rdrbd C"], r["limit"]),
            fmt(r["C-drbd A"]), fmt(r["rdrbd A"]), ratio(r["rdrbd A"], r["C-drbd A"]),
        ]) + " |")
    table = "\n".join(lines)
    print(table)
    outdir = os.path.dirname(os.path.abspath(paths[0]))
    with open(os.path.join(outdir, "summary.md"), "w", encoding="utf-8") as f:
        f.write(table + "\n")
    chart(rows, os.path.join(outdir, "bench.png"), n, link)


def chart(rows, path, n, link):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: no matplotlib; no chart")
        return
    series = [("physical limit", "limit", "#999999"), ("C DRBD 8.4", "C-drbd C", "#d62728"),
              ("rdrbd", "rdrbd C", "#1f77b4")]
    labels = [r["label"].replace(" (lower is better)", "\n(lower is better)") for r in rows]
    fig, ax = plt.subplots(figsize=(11, 6))
    width = 0.27
    for i, (name, key, color) in enumerate(series):
        vals = []
        for r in rows:
            v, lim = r[key], r["limit"]
            if v is None or not lim:
                vals.append(0)
            elif r["higher"]:
                vals.append(v / lim)
            else:
                vals.append(lim / v)
        ax.barh([y + (1 - i) * width for y in range(len(rows))], vals, height=width, label=name, color=color)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("fraction of the physical limit (protocol C; latency as limit / latency)")
    ax.set_title(f"rdrbd beside C DRBD 8.4, two TCG guests, median of {n} run(s); "
                 f"link {fmt(link[0])} MB/s, {fmt(link[1])} µs RTT", fontsize=10)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"bench: chart {path}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: bench-report.py RUN-OUTPUT...")
    main(sys.argv[1:])
