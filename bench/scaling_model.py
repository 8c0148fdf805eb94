#!/usr/bin/python3
"""docs/scaling.md's estimates: throughput of data-parallel nnseq on N nodes
from the per-step costs measured on one machine (a cost model, not a
measurement).

    step(N) = compute + update / N + 2 (N - 1) alpha + 2 (N - 1) / N x S / B

compute: the forward and backward of a batch (T1 - update, per batch of
BATCH on one node; divided by N at a fixed global batch, whole at a fixed
per-node batch); update: the optimiser's pass over every parameter, which
nnseq shards over the ranks; the last two terms are the ring reduce-scatter
plus the ring allgather (the bytes of a ring allreduce), no overlap.

usage: scaling_model.py NAME T1_MS UPDATE_MS PARAMS [BATCH]
"""
import sys

LINKS = [("10 GbE", 1.25e9, 5e-6), ("25 GbE", 3.125e9, 5e-6), ("100 Gb IB", 12.5e9, 2e-6)]
NODES = [2, 8, 64]


def step(n, compute, update, size, bandwidth, alpha, per_node):
    comm = 2 * (n - 1) * alpha + 2 * (n - 1) / n * size / bandwidth
    work = compute if per_node else compute / n
    return work + update / n, comm


def main():
    name, t1, update, params = sys.argv[1], float(sys.argv[2]) / 1e3, float(sys.argv[3]) / 1e3, int(sys.argv[4])
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 64
    size, compute = 4 * params, t1 - update
    one = batch / t1
    for per_node in (False, True):
        kind = "fixed per-node batch %d" % batch if per_node else "fixed global batch %d" % batch
        print(f"\n### {name}, {kind} (1 node: {one:,.0f} samples/s)\n")
        print("| nodes | compute + update | " + " | ".join(l[0] + ": communication, samples/s" for l in LINKS) + " |")
        print("|---:|---:|" + "---:|" * len(LINKS))
        for n in NODES:
            cells = []
            for _, bandwidth, alpha in LINKS:
                work, comm = step(n, compute, update, size, bandwidth, alpha, per_node)
                rate = (batch * n if per_node else batch) / (work + comm)
                cells.append(f"{comm * 1e3:.2f} ms, {rate:,.0f} ({rate / one:.1f}x)")
            work, _ = step(n, compute, update, size, 1, 0, per_node)
            print(f"| {n} | {work * 1e3:.2f} ms | " + " | ".join(cells) + " |")
        crossings = []
        for label, bandwidth, alpha in LINKS:
            n = 2
            while n < 100000:
                work, comm = step(n, compute, update, size, bandwidth, alpha, per_node)
                if comm > work:
                    break
                n += 1
            crossings.append(f"{n if n < 100000 else 'beyond 100,000'} ({label})")
        print("\nCommunication exceeds compute + update from " + ", ".join(crossings) + " nodes.")


if __name__ == "__main__":
    main()
