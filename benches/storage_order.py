#!/usr/bin/env python3
"""What the storage delivers in the order a training run reads (issue 17).

A training epoch reads its units (a Parquet row group's used column chunks, a shard's row
range: about 16 MB each in the 8M x 64 datasets) in the plan's shuffled order, two readers at
once. `cat` reads the files front to back. This script reads the same bytes both ways, with
the pages evicted first, and prints what each pattern gets from storage:

- order: `file` (front to back, as `cat`) or `plan` (units in a seeded random order, as an
  epoch reads them);
- method: `direct` (O_DIRECT into an aligned buffer: what `--read-mode read` does) or
  `buffered` (ordinary reads in 4 MiB pieces with the kernel's read-ahead, each piece
  dropped from the page cache once read);
- streams: 1 or 2 threads reading different units at once (a run has 2 readers).

Every case reads every byte once (`pgpgin` is printed to show it). The `plan` rows are the
ceiling for any reading path that keeps the plan's order: no reading method can feed an
epoch faster than the storage delivers that order.

Usage: benches/storage_order.py DATA_DIR [--unit-mb 16] [--runs 3] [--rows N]
                                 [--case ORDER,METHOD,STREAMS] [--rate-only]
  --rows N also prints the rows/s each rate would feed (N rows in DATA_DIR);
  --case runs that one case (e.g. plan,direct,1), and --rate-only prints its GB/s alone
  (benches/larger_than_memory.sh uses it).
"""

import argparse
import mmap
import os
import random
import statistics
import threading
import time

PIECE = 4 << 20


def vmstat():
    with open("/proc/vmstat") as f:
        return {k: int(v) for k, v in (line.split() for line in f)}


def evict(paths):
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)


def read_all(paths, unit, order, method, streams):
    """Reads every byte of `paths` in `unit`-byte spans; returns (GB/s, GB read from storage)."""
    evict(paths)
    flags = os.O_RDONLY | (os.O_DIRECT if method == "direct" else 0)
    fds = [os.open(p, flags) for p in paths]
    spans = [
        (fd, start, min(unit, os.path.getsize(p) - start))
        for fd, p in zip(fds, paths)
        for start in range(0, os.path.getsize(p), unit)
    ]
    if order == "plan":
        random.Random(1).shuffle(spans)
    queue = iter(spans)
    lock = threading.Lock()
    total = [0]

    def reader():
        buffer = mmap.mmap(-1, unit + PIECE)  # page-aligned, as O_DIRECT needs
        view = memoryview(buffer)
        done = 0
        while True:
            with lock:
                span = next(queue, None)
            if span is None:
                break
            fd, start, length = span
            if method == "direct":
                aligned = -(-length // 4096) * 4096
                got = os.preadv(fd, [view[:aligned]], start)
                done += min(got, length)
            else:
                at = 0
                while at < length:
                    n = min(PIECE, length - at)
                    done += os.preadv(fd, [view[:n]], start + at)
                    os.posix_fadvise(fd, start + at, n, os.POSIX_FADV_DONTNEED)
                    at += n
        with lock:
            total[0] += done
        view.release()
        buffer.close()

    before = vmstat()
    began = time.perf_counter()
    threads = [threading.Thread(target=reader) for _ in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - began
    after = vmstat()
    for fd in fds:
        os.close(fd)
    # pgpgin counts KiB read from storage.
    return total[0] / seconds / 1e9, (after["pgpgin"] - before["pgpgin"]) * 1024 / 1e9


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data")
    parser.add_argument("--unit-mb", type=float, default=16)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int)
    parser.add_argument("--case")
    parser.add_argument("--rate-only", action="store_true")
    args = parser.parse_args()
    paths = sorted(
        os.path.join(args.data, n)
        for n in os.listdir(args.data)
        if n.endswith((".parquet", ".sfs"))
    )
    size = sum(os.path.getsize(p) for p in paths)
    unit = int(args.unit_mb * (1 << 20)) // 4096 * 4096
    cases = [
        (order, method, streams)
        for order in ("file", "plan")
        for method in ("direct", "buffered")
        for streams in (1, 2)
    ]
    if args.case:
        order, method, streams = args.case.split(",")
        cases = [(order, method, int(streams))]
    if not args.rate_only:
        print(
            f"{len(paths)} files, {size / 1e9:.2f} GB, units of {unit / (1 << 20):.0f} MiB; "
            f"median of {args.runs} runs per case; {os.cpu_count()} cores"
        )
        rows_col = " | feeds rows/s" if args.rows else ""
        print(f"| order | method | streams | GB/s | read from storage{rows_col} |")
        print("|---|---|---|---|---|" + ("---|" if args.rows else ""))
    for order, method, streams in cases:
        runs = [read_all(paths, unit, order, method, streams) for _ in range(args.runs)]
        rate = statistics.median(r for r, _ in runs)
        read = statistics.median(g for _, g in runs)
        if args.rate_only:
            print(f"{rate:.4f}")
            continue
        feeds = f" | {rate * 1e9 / size * args.rows / 1e6:.2f} M" if args.rows else ""
        print(f"| {order} | {method} | {streams} | {rate:.2f} | {read:.2f} GB{feeds} |")


if __name__ == "__main__":
    main()
