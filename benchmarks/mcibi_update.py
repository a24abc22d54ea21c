"""MCIBI memory update at full label resolution: the authors' order (upsample R to the crop, then update) against
`ctxseg.methods.mcibi.update_memory_lowres` (width first, then blocks of rows), on identical inputs. Each variant
runs in a fresh process, so its peak memory is the growth of that process's peak RSS over its inputs.

    python benchmarks/mcibi_update.py                                    # a reduced size on CPU, prints a table
    python benchmarks/mcibi_update.py --out book/results/cpu/mcibi_update_bench.json
    python benchmarks/mcibi_update.py --batch 2 --channels 512 --size 512 1024   # the Cityscapes crop (about 5 GB)

Run it alone: on two cores a second heavy process makes every time meaningless.
"""
from __future__ import annotations
import argparse, json, multiprocessing as mp, resource, statistics, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]


def _inputs(a):
    g = torch.Generator().manual_seed(0)
    H, W = a.size
    h, w = H // a.stride, W // a.stride
    feats = torch.randn(a.batch, a.channels, h, w, generator=g)
    labels = torch.randint(0, a.classes, (a.batch, H, W), generator=g)
    labels[:, : H // 10] = 255
    memory = torch.randn(a.classes, a.channels, generator=g)
    return memory, feats, labels


def _worker(args):
    variant, a = args
    from ctxseg.methods.mcibi import update_memory, update_memory_lowres
    torch.set_num_threads(a.threads)
    memory, feats, labels = _inputs(a)
    if variant == 'full':
        run = lambda: update_memory(memory, F.interpolate(feats, size=tuple(a.size), mode='bilinear', align_corners=False), labels, 0.9)
    else:
        run = lambda: update_memory_lowres(memory, feats, labels, 0.9, rows=a.rows)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = run()                                                              # first call: the peak
    peak_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0) / 1024
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter(); run(); times.append(time.perf_counter() - t0)
    return {'variant': variant, 'median_ms': statistics.median(times) * 1e3, 'min_ms': min(times) * 1e3,
            'peak_extra_mb': peak_mb, 'memory': out.tolist()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--batch', type=int, default=2)
    ap.add_argument('--channels', type=int, default=256)
    ap.add_argument('--size', type=int, nargs=2, default=[256, 512], metavar=('H', 'W'), help='label (crop) resolution')
    ap.add_argument('--stride', type=int, default=8, help='output stride of the features')
    ap.add_argument('--classes', type=int, default=19)
    ap.add_argument('--rows', type=int, default=64, help='rows per block of update_memory_lowres')
    ap.add_argument('--iters', type=int, default=5)
    ap.add_argument('--threads', type=int, default=torch.get_num_threads())
    ap.add_argument('--out')
    a = ap.parse_args(argv)
    ctx = mp.get_context('spawn')
    rows = []
    for v in ('full', 'lowres'):
        with ctx.Pool(1) as pool: rows.append(pool.apply(_worker, ((v, a),)))
        print(f"{v}: {rows[-1]['median_ms']:.0f} ms (median of {a.iters}), peak extra {rows[-1]['peak_extra_mb']:.0f} MB", flush=True)
    diff = (torch.tensor(rows[0].pop('memory')) - torch.tensor(rows[1].pop('memory'))).abs().max().item()
    full_mb = a.batch * a.channels * a.size[0] * a.size[1] * 4 / 2**20
    print(f'max |difference| of the updated memories: {diff:.2e}; the full-resolution feature tensor is {full_mb:.0f} MB; '
          f'peak ratio lowres/full {rows[1]["peak_extra_mb"] / max(rows[0]["peak_extra_mb"], 1e-9):.3f}')
    if a.out:
        from ctxseg.runner import result_header
        from ctxseg.engine import atomic_write_json
        atomic_write_json(a.out, {**result_header('benchmarks/mcibi_update.py', argv, ROOT),
                                  'inputs': {k: getattr(a, k) for k in ('batch', 'channels', 'size', 'stride', 'classes', 'rows', 'iters', 'threads')},
                                  'full_tensor_mb': full_mb, 'max_abs_diff': diff, 'rows': rows,
                                  'memory_measure': 'growth of the worker process peak RSS over its inputs (first call)'})
        print('wrote', a.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
