#!/usr/bin/python3
"""The peer for bench/conv_shapes.cpp: PyTorch's CPU convolutions (oneDNN through ideep) on the same five
layers of the conv autoencoder, batch 128, 3x3 'same', with the same table, so that the two can be run one
after the other and compared line by line.

  fwd  act(conv2d(x, w, b))                       (relu or sigmoid, not fused in PyTorch)
  dX   aten::convolution_backward, input only     (what autograd runs; not for the first layer)
  dW   aten::convolution_backward, weight and bias

Run with Debian's interpreter: /usr/bin/python3 bench/conv_torch.py [max_threads=2] [seconds=0.05] [blocks=5]
It re-executes itself with glibc malloc told to keep large buffers, as ../shared/anchors/tuned.sh runs the
PyTorch reference: otherwise every 12.8 MB activation is a fresh mmap, and page faults dominate.
"""
import os
import resource
import sys
import time

import torch
import torch.nn.functional as F

LAYERS = [("enc1 1->32 28x28", 1, 32, 28, torch.relu, True),
          ("enc2 32->32 14x14", 32, 32, 14, torch.relu, False),
          ("mid 32->32 7x7", 32, 32, 7, torch.relu, False),
          ("dec1 32->32 14x14", 32, 32, 14, torch.relu, False),
          ("dec2 32->1 28x28", 32, 1, 28, torch.sigmoid, False)]


def cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(run, seconds, blocks):
    """ms per run: best block, median block, and process CPU time per run."""
    for _ in range(2):
        run()
    t0 = time.perf_counter()
    run()
    repeats = max(1, int(seconds / max(1e-7, time.perf_counter() - t0)))
    times, cpu0 = [], cpu_seconds()
    for _ in range(max(1, blocks)):
        start = time.perf_counter()
        for _ in range(repeats):
            run()
        times.append((time.perf_counter() - start) * 1e3 / repeats)
    cpu_ms = (cpu_seconds() - cpu0) * 1e3 / (repeats * max(1, blocks))
    times.sort()
    return times[0], times[len(times) // 2], cpu_ms


def main():
    tunables = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=2147483648"
    if os.environ.get("GLIBC_TUNABLES") != tunables:
        os.execve(sys.executable, [sys.executable] + sys.argv, dict(os.environ, GLIBC_TUNABLES=tunables))
    max_threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
    blocks = int(sys.argv[3]) if len(sys.argv) > 3 else 5
    batch = 128
    torch.manual_seed(0)
    print(f"# PyTorch {torch.__version__} conv, batch {batch}, 3x3 same; ms and GFLOP/s, best/median of {blocks} "
          f"blocks of {seconds} s")
    print(f"{'layer':<20} {'pass':<4} {'thr':>3} | {'ms best':>8} {'median':>8} | {'GF/s':>7} {'median':>7} | {'cpu ms':>7}")
    with torch.no_grad():
        for threads in range(1, max_threads + 1):
            torch.set_num_threads(threads)
            total = [0.0, 0.0, 0.0, 0.0]
            for name, channels, filters, size, act, first in LAYERS:
                x = torch.rand(batch, channels, size, size) - 0.5
                w = (torch.rand(filters, channels, 3, 3) - 0.5) * 0.2
                b = torch.zeros(filters)
                g = torch.rand(batch, filters, size, size) - 0.5
                flops = 2.0 * batch * filters * size * size * channels * 9
                passes = [("fwd", lambda: act(F.conv2d(x, w, b, padding=1)))]

                def backward(mask):
                    return lambda: torch.ops.aten.convolution_backward(
                        g, x, w, [filters], [1, 1], [1, 1], [1, 1], False, [0, 0], 1, mask)
                if not first:
                    passes.append(("dX", backward([True, False, False])))
                passes.append(("dW", backward([False, True, True])))
                for label, run in passes:
                    best, median, cpu = measure(run, seconds, blocks)
                    print(f"{name:<20} {label:<4} {threads:>3} | {best:>8.3f} {median:>8.3f} | "
                          f"{flops / best / 1e6:>7.1f} {flops / median / 1e6:>7.1f} | {cpu:>7.3f}", flush=True)
                    total = [total[0] + best, total[1] + median, total[2] + cpu, total[3] + flops]
            print(f"{'total':<20} {'all':<4} {threads:>3} | {total[0]:>8.3f} {total[1]:>8.3f} | "
                  f"{total[3] / total[0] / 1e6:>7.1f} {total[3] / total[1] / 1e6:>7.1f} | {total[2]:>7.3f}   "
                  "(the convolutions of one training step)")


if __name__ == "__main__":
    main()
