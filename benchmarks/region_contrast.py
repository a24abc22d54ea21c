"""RegionContrast benchmark (issue 14): the released code's channel-wise loss (hzhupku/RegionContrast
`_compute_contrast_loss`: a Python loop over the classes present and, inside it, over all the other classes) against
`ctxseg.methods.region_contrast.authors_region_loss` (the sum over the other classes as one sum minus the own queue,
a centre and a block of channels at a time, in base-2 exponentials, with the gradient in closed form), forward and backward, on identical
inputs at the released sizes: D = 256 channels, L = 2975 slots per class, K = 19 classes, every class present;
also the paper's dot-product loss on the same memory, and the largest difference between the two released-loss values.

    python benchmarks/region_contrast.py                                       # prints a table
    python benchmarks/region_contrast.py --out book/results/cpu/region_contrast_bench.json

Run it alone: on two cores a second heavy process makes every time meaningless.
"""
from __future__ import annotations
import argparse, statistics, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F
from ctxseg.methods.region_contrast import authors_region_loss, paper_region_loss

ROOT = Path(__file__).resolve().parents[1]


def loop_loss(q, k, queues, tau=0.2):
    "The released structure: for each present class, a loop over all the other classes' queues."
    total = 0
    for i in range(q.shape[0]):
        c = int(k[i])
        l_pos = q[i].unsqueeze(1) * queues[c]
        l_neg = 0
        for o in range(queues.shape[0]):
            if o != c: l_neg = l_neg + q[i].unsqueeze(1) * queues[o]
        logits = torch.cat([l_pos, l_neg], 1) / tau
        total = total + F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long, device=q.device))
    return total


def timed(fn, iters, warmup=2):
    for _ in range(warmup): fn()
    t = []
    for _ in range(iters):
        t0 = time.perf_counter(); fn(); t.append(time.perf_counter() - t0)
    return {'median_ms': statistics.median(t) * 1e3, 'min_ms': min(t) * 1e3, 'max_ms': max(t) * 1e3}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--dim', type=int, default=256)
    ap.add_argument('--queue-len', type=int, default=2975)
    ap.add_argument('--classes', type=int, default=19)
    ap.add_argument('--iters', type=int, default=5)
    ap.add_argument('--threads', type=int, default=torch.get_num_threads())
    ap.add_argument('--out')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    queues = F.normalize(torch.randn(a.classes, a.dim, a.queue_len, generator=g), dim=1)
    q0 = F.normalize(torch.randn(a.classes, a.dim, generator=g), dim=1)
    k = torch.arange(a.classes)
    def step(fn):
        def run():
            q = q0.clone().requires_grad_()
            loss = fn(q); loss.backward()
            return loss.detach()
        return run
    rows = {'loop (released structure)': step(lambda q: loop_loss(q, k, queues)),
            'ours (authors_region_loss)': step(lambda q: authors_region_loss(q, k, queues)),
            "ours, the paper's loss (paper_region_loss)": step(lambda q: paper_region_loss(q, k, queues))}
    res = {}
    for name, fn in rows.items():
        res[name] = timed(fn, a.iters)
        print(f"{name}: {res[name]['median_ms']:.0f} ms (median of {a.iters}, forward + backward)", flush=True)
    diff = float((step(lambda q: loop_loss(q, k, queues))() - step(lambda q: authors_region_loss(q, k, queues))()).abs())
    speedup = res['loop (released structure)']['median_ms'] / res['ours (authors_region_loss)']['median_ms']
    print(f'speed-up {speedup:.1f}×; |difference| of the loss values {diff:.2e}')
    if a.out:
        from ctxseg.provenance import result_header
        from ctxseg.engine import atomic_write_json
        atomic_write_json(a.out, {**result_header('benchmarks/region_contrast.py', argv, ROOT),
                                  'inputs': {'dim': a.dim, 'queue_len': a.queue_len, 'classes': a.classes, 'centres': a.classes,
                                             'iters': a.iters, 'threads': a.threads},
                                  'rows': res, 'speedup': speedup, 'max_abs_diff': diff})
        print('wrote', a.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
