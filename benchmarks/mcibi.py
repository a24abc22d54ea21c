"""MCIBI's two costly operations on CPU, each variant in a fresh process (its peak memory is the growth of that
process's peak RSS over its inputs), on identical inputs:

* `update`: the memory update at full label resolution, in the authors' order (upsample R to the crop, then
  update) against `ctxseg.methods.mcibi.update_memory_lowres` (the weights moved to low resolution); also the largest
  difference between the two updated memories;
* `attention`: the self-attention block at inference, `scaled_dot_product_attention` against the plain
  softmax(QKᵀ/√C_t)V form, at the positions of 1/8 of a crop; also their largest difference.

    python benchmarks/mcibi.py update                                  # a reduced size, prints a table
    python benchmarks/mcibi.py update --batch 2 --channels 512 --size 512 1024   # the Cityscapes crop (about 5 GB)
    python benchmarks/mcibi.py attention --size 512 512 --size 512 1024
    python benchmarks/mcibi.py update --out book/results/cpu/mcibi_update_bench.json

Run it alone: on two cores a second heavy process makes every time meaningless.
"""
from __future__ import annotations
import argparse, multiprocessing as mp, resource, statistics, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def _update_case(a, size, variant):
    from ctxseg.methods.mcibi import update_memory, update_memory_lowres
    g = torch.Generator().manual_seed(0)
    H, W = size
    feats = torch.randn(a.batch, a.channels, H // a.stride, W // a.stride, generator=g)
    labels = torch.randint(0, a.classes, (a.batch, H, W), generator=g)
    labels[:, : H // 10] = 255
    memory = torch.randn(a.classes, a.channels, generator=g)
    if variant == 'full':
        return lambda: update_memory(memory, F.interpolate(feats, size=(H, W), mode='bilinear', align_corners=False), labels, 0.9)
    return lambda: update_memory_lowres(memory, feats, labels, 0.9)


def _attention_case(a, size, variant):
    from ctxseg.methods.mcibi import SelfAttentionBlock
    torch.manual_seed(0)
    sa = SelfAttentionBlock(a.channels, a.channels, a.channels // 2).eval()
    g = torch.Generator().manual_seed(1)
    q, k = (torch.randn(a.batch, a.channels, size[0] // a.stride, size[1] // a.stride, generator=g) for _ in range(2))
    def run():
        with torch.no_grad(): return sa(q, k, fused=variant == 'sdpa')
    return run


CASES = {'update': (_update_case, ('full', 'lowres')), 'attention': (_attention_case, ('plain', 'sdpa'))}


def _worker(args):
    what, variant, size, a = args
    torch.set_num_threads(a.threads)
    run = CASES[what][0](a, size, variant)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = run()                                                              # the first call sets the peak
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter(); run(); times.append(time.perf_counter() - t0)
    return {'what': what, 'variant': variant, 'size': list(size), 'median_ms': statistics.median(times) * 1e3,
            'min_ms': min(times) * 1e3, 'peak_extra_mb': peak_mb, 'out': out}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('what', choices=sorted(CASES))
    ap.add_argument('--batch', type=int, default=None, help='default: 2 for update, 1 for attention')
    ap.add_argument('--channels', type=int, default=None, help='default: 256 for update, 512 for attention')
    ap.add_argument('--size', type=int, nargs=2, action='append', metavar=('H', 'W'),
                    help='crop (label) resolution; repeat for several (default 256 512)')
    ap.add_argument('--stride', type=int, default=8, help='output stride of the features')
    ap.add_argument('--classes', type=int, default=19)
    ap.add_argument('--iters', type=int, default=5)
    ap.add_argument('--threads', type=int, default=torch.get_num_threads())
    ap.add_argument('--out')
    a = ap.parse_args(argv)
    a.batch = a.batch or (2 if a.what == 'update' else 1)
    a.channels = a.channels or (256 if a.what == 'update' else 512)
    sizes = [tuple(s) for s in (a.size or [[256, 512]])]
    ctx = mp.get_context('spawn')
    rows = []
    for size in sizes:
        pair = []
        for v in CASES[a.what][1]:
            with ctx.Pool(1) as pool: pair.append(pool.apply(_worker, ((a.what, v, size, a),)))
            print(f"{a.what} {size[0]}×{size[1]} {v}: {pair[-1]['median_ms']:.0f} ms (median of {a.iters}), "
                  f"peak extra {pair[-1]['peak_extra_mb']:.0f} MB", flush=True)
        diff = float((pair[0].pop('out') - pair[1].pop('out')).abs().max())
        for r in pair: r['max_abs_diff'] = diff
        ratio = pair[1]['peak_extra_mb'] / max(pair[0]['peak_extra_mb'], 1e-9)
        print(f'  max |difference| {diff:.2e}; peak memory {CASES[a.what][1][1]}/{CASES[a.what][1][0]} {ratio:.3f}')
        rows += pair
    if a.out:
        from ctxseg.provenance import result_header
        from ctxseg.engine import atomic_write_json
        atomic_write_json(a.out, {**result_header('benchmarks/mcibi.py', argv, ROOT),
                                  'inputs': {k: getattr(a, k) for k in ('what', 'batch', 'channels', 'stride', 'classes', 'iters', 'threads')},
                                  'rows': rows, 'memory_measure': 'growth of the worker process peak RSS over its inputs (first call)'})
        print('wrote', a.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
