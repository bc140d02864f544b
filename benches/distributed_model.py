#!/usr/bin/env python3
"""The step-time model of docs/distributed.md: predicted training rows/s for W machines.

T_step(W) = t_row · b / W + T_allreduce(W),
T_allreduce(W) = 2 · (W − 1) / W · S / bandwidth + latency · ceil(log2 W),
rows/s = b / T_step, with S = (P + 2) · 8 bytes (streamfit all-reduces its f64 gradient sums
plus the loss and row count). t_row is the measured single-machine time per row (input- or
compute-bound, whichever is slower), from benches/mpi.sh and benches/mlp.sh on this 2-core
machine. Usage: benches/distributed_model.py
"""
import math

MODELS = {
    # name: (parameters P, measured seconds per row on one 2-core machine)
    "logistic, 64 features": (65, 1 / 4.27e6),
    "MLP 64→64→32→1": (6273, 1 / 1.25e6),
}
NETWORKS = {
    # name: (bandwidth bytes/s, latency per message s)
    "10 GbE (TCP)": (1.25e9, 20e-6),
    "100 Gb/s InfiniBand": (12.5e9, 2e-6),
}


def allreduce(w, size, bandwidth, latency):
    if w == 1:
        return 0.0
    return 2 * (w - 1) / w * size / bandwidth + latency * math.ceil(math.log2(w))


def main():
    print("| model | network | global batch | machines | step µs (compute + allreduce) | rows/s | × one machine | batch per machine for allreduce ≤ compute |")
    print("|---|---|---|---|---|---|---|---|")
    for model, (p, t_row) in MODELS.items():
        size = (p + 2) * 8
        for net, (bw, lat) in NETWORKS.items():
            for b in (4096, 32768):
                for w in (1, 8, 64):
                    compute = t_row * b / w
                    comm = allreduce(w, size, bw, lat)
                    step = compute + comm
                    rate = b / step
                    hide = math.ceil(comm / t_row) if w > 1 else 0
                    print(
                        f"| {model} | {net} | {b:,} | {w} | {step*1e6:,.0f} ({compute*1e6:,.0f} + {comm*1e6:,.0f}) "
                        f"| {rate/1e6:,.1f} M | {rate*t_row:.1f} | {hide:,} |"
                    )


if __name__ == "__main__":
    main()
