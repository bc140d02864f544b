#!/usr/bin/env python3
"""One epoch of batches delivered to Python, three ways, side by side (issue 19).

    python benches/python_loader.py [DATA] [--batch-size 256] [--buffer 65536]

DATA defaults to target/bench-8m (8M rows × 64 features, made by benches/datasets.sh). Each
way runs in its own child process (so peak RSS is its own) and the consumer touches every
batch (sums it), as a training step reads it:

- streamfit: `streamfit.Loader` (readers, shuffle buffer of --buffer rows, prefetch 4) consumed
  by a numpy loop;
- pyarrow+numpy: the hand-written peer: pyarrow `iter_batches` of 65,536 rows, each made a
  row-major float32 array, through a numpy reservoir of --buffer rows from which random rows
  are drawn into batches (the same shuffle-buffer scheme), no threads of its own;
- torch DataLoader: a `torch.utils.data.DataLoader` over a pyarrow `IterableDataset` (the same
  reservoir), when torch is installed.

Prints one line per way: rows/s (the loader's construction and the epoch; imports are not
timed) and the child's peak RSS: its own high-water mark (VmHWM, which starts afresh at exec,
unlike ru_maxrss, which keeps the parent's), plus for the DataLoader its worker's (an upper
bound: pages the worker shares with its parent count twice).
"""

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def feature_columns(path):
    import pyarrow.parquet as pq

    schema = pq.read_schema(path)
    return [n for n in schema.names if n != "label"]


def files(data):
    if os.path.isdir(data):
        return sorted(os.path.join(data, f) for f in os.listdir(data) if f.endswith(".parquet"))
    return [data]


def reservoir_batches(paths, batch_size, buffer_rows, seed=0):
    """The hand-written peer: pyarrow batches → row-major float32 → a numpy reservoir."""
    import numpy as np
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    columns = feature_columns(paths[0])
    d = len(columns)
    x_buf = np.empty((buffer_rows, d), dtype=np.float32)
    y_buf = np.empty(buffer_rows, dtype=np.float32)
    filled = 0
    out_x = np.empty((batch_size, d), dtype=np.float32)
    out_y = np.empty(batch_size, dtype=np.float32)
    taken = 0
    for path in paths:
        for rb in pq.ParquetFile(path).iter_batches(batch_size=65536, columns=columns + ["label"]):
            x = np.column_stack([rb.column(i).to_numpy() for i in range(d)]).astype(np.float32, copy=False)
            y = rb.column(d).to_numpy().astype(np.float32, copy=False)
            start = 0
            if filled < buffer_rows:
                n = min(buffer_rows - filled, len(y))
                x_buf[filled:filled + n] = x[:n]
                y_buf[filled:filled + n] = y[:n]
                filled += n
                start = n
            # Each incoming row evicts a random resident row into the current batch.
            while start < len(y):
                n = min(batch_size - taken, len(y) - start)
                slots = rng.integers(0, buffer_rows, size=n)
                out_x[taken:taken + n] = x_buf[slots]
                out_y[taken:taken + n] = y_buf[slots]
                x_buf[slots] = x[start:start + n]
                y_buf[slots] = y[start:start + n]
                # A slot drawn twice in one draw emits its row twice and keeps only the last
                # incoming row: a vectorised approximation of the reservoir (rare repeats for
                # a large buffer), kept because a per-row Python loop would be far slower.
                taken += n
                start += n
                if taken == batch_size:
                    yield out_x.copy(), out_y.copy()
                    taken = 0
    # The end of the data: the pending partial batch, then the reservoir in random order.
    order = rng.permutation(filled)
    rest_x = np.concatenate([out_x[:taken], x_buf[:filled][order]])
    rest_y = np.concatenate([out_y[:taken], y_buf[:filled][order]])
    for i in range(0, len(rest_y), batch_size):
        yield rest_x[i:i + batch_size], rest_y[i:i + batch_size]


def consume(batches):
    rows, total = 0, 0.0
    for x, y in batches:
        total += float(x.sum()) + float(y.sum())
        rows += len(y)
    return rows, total


def peak_rss_bytes():
    """This process's peak RSS since it was exec'd: VmHWM, else ru_maxrss (which on Linux
    keeps the forking parent's peak across exec)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def run_child(way, data, batch_size, buffer_rows):
    # Imports first, so that only the loader and its epoch are timed.
    import numpy  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    if way == "streamfit":
        import streamfit
    elif way == "torch DataLoader":
        import torch
        from torch.utils.data import DataLoader, IterableDataset
    started = time.perf_counter()
    if way == "streamfit":
        loader = streamfit.Loader(data, batch_size=batch_size, shuffle_buffer=buffer_rows)
        rows, _ = consume(loader)
    elif way == "pyarrow+numpy":
        rows, _ = consume(reservoir_batches(files(data), batch_size, buffer_rows))
    else:
        class Parquet(IterableDataset):
            def __iter__(self):
                for x, y in reservoir_batches(files(data), batch_size, buffer_rows):
                    yield torch.from_numpy(x), torch.from_numpy(y)

        loader = DataLoader(Parquet(), batch_size=None, num_workers=1, prefetch_factor=4)
        rows, _ = consume((x.numpy(), y.numpy()) for x, y in loader)
    seconds = time.perf_counter() - started
    peak = peak_rss_bytes()
    if way == "torch DataLoader":
        peak += resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(json.dumps({"way": way, "rows": rows, "seconds": seconds, "peak_rss_bytes": peak}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", nargs="?", default=os.path.join(HERE, "..", "target", "bench-8m"))
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--buffer", type=int, default=65536)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args.child, args.data, args.batch_size, args.buffer)
        return
    ways = ["streamfit", "pyarrow+numpy"]
    # Looked up, not imported: a child's ru_maxrss would start at this process's peak.
    if importlib.util.find_spec("torch") is not None:
        ways.append("torch DataLoader")
    else:
        print("torch is not installed: the DataLoader way is left out", file=sys.stderr)
    print(f"data {args.data}, batch {args.batch_size}, buffer {args.buffer} rows")
    results = []
    for way in ways:
        out = subprocess.run(
            [sys.executable, __file__, args.data, "--batch-size", str(args.batch_size),
             "--buffer", str(args.buffer), "--child", way],
            capture_output=True, text=True, check=True,
        )
        r = json.loads(out.stdout.strip().splitlines()[-1])
        results.append(r)
        print(f"{way:18s} {r['rows']:>10,} rows  {r['seconds']:7.2f} s  "
              f"{r['rows'] / r['seconds'] / 1e6:6.2f} M rows/s  peak RSS {r['peak_rss_bytes'] / 1e6:7.1f} MB",
              flush=True)
    base = next(r for r in results if r["way"] == "pyarrow+numpy")
    sf = next(r for r in results if r["way"] == "streamfit")
    print(f"streamfit / pyarrow+numpy: {base['seconds'] / sf['seconds']:.2f}× the rows/s, "
          f"{sf['peak_rss_bytes'] / base['peak_rss_bytes']:.2f}× the peak RSS")


if __name__ == "__main__":
    main()
