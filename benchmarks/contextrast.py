"""Contextrast benchmark (issue 15): the exact distance transform on tensors (`ctxseg.methods.contextrast.edt`)
against `scipy.ndimage.distance_transform_edt` map by map (time, and the largest difference), on error maps shaped
like a segmentation network's (bands along the boundaries of a blob-shaped class map, shifted by a few pixels), at
the cpu recipe's layer grids and at HRNet's on a Cityscapes crop; and the method's forward and backward (anchors,
sampling, BANE, the loss; projection heads included) at the same sizes.

    python benchmarks/contextrast.py edt                        # prints a table
    python benchmarks/contextrast.py edt loss --out book/results/cpu/contextrast_bench.json

Run it alone: on two cores a second heavy process makes every time meaningless.
"""
from __future__ import annotations
import argparse, statistics, sys, time
from pathlib import Path
import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from ctxseg.methods.contextrast import error_maps, edt, Contextrast

ROOT = Path(__file__).resolve().parents[1]
# (name, batch, classes, grids): the cpu recipe (ResNet-18, 192 px: layer1 at 1/4, layers 2-4 at 1/8) and
# HRNetV2-W48 on a 512×1024 Cityscapes crop, 2 images per GPU (branches at 1/4, 1/8, 1/16, 1/32)
CASES = {'cpu recipe (192 px, batch 8, 8 classes)': (8, 8, [(48, 48), (24, 24)], {'layer1': 16, 'layer2': 32, 'layer3': 64, 'layer4': 128}),
         'HRNet, Cityscapes crop (512×1024, batch 2, 19 classes)': (2, 19, [(128, 256), (64, 128), (32, 64), (16, 32)],
                                                                   {'branch1': 48, 'branch2': 96, 'branch3': 192, 'branch4': 384})}


def class_maps(B, K, H, W, g):
    "A blob-shaped label map and a prediction: the label shifted by 1-3 px with some blobs relabelled."
    low = torch.randint(0, K, (B, 1, max(2, H // 8), max(2, W // 8)), generator=g).float()
    label = F.interpolate(low, size=(H, W), mode='nearest')[:, 0].long()
    dy, dx = (int(v) for v in torch.randint(1, 4, (2,), generator=g))
    pred = torch.roll(label, shifts=(dy, dx), dims=(1, 2))
    flip = F.interpolate((torch.rand(B, 1, max(2, H // 16), max(2, W // 16), generator=g) < 0.1).float(), size=(H, W), mode='nearest')[:, 0] > 0
    pred = torch.where(flip, (pred + 1) % K, pred)
    return pred, label


def timed(fn, iters, warmup=1):
    for _ in range(warmup): fn()
    t = []
    for _ in range(iters):
        t0 = time.perf_counter(); fn(); t.append(time.perf_counter() - t0)
    return {'median_ms': statistics.median(t) * 1e3, 'min_ms': min(t) * 1e3, 'max_ms': max(t) * 1e3}


def scipy_all(E):
    "scipy, one map at a time (maps with no error pixel skipped: their distances are all 0)."
    out = np.zeros(E.shape, np.float64)
    flat, o = E.reshape(-1, *E.shape[-2:]).numpy(), out.reshape(-1, *E.shape[-2:])
    for i, m in enumerate(flat):
        if m.any(): o[i] = ndimage.distance_transform_edt(m)
    return out


def bench_edt(iters):
    rows = []
    g = torch.Generator().manual_seed(0)
    for case, (B, K, grids, _) in CASES.items():
        for H, W in grids:
            pred, label = class_maps(B, K, H, W, g)
            E = error_maps(pred, label, K)
            ours, ref = edt(E), scipy_all(E)
            fin = np.isfinite(ref) & torch.isfinite(ours).numpy()
            diff = float(np.abs(ours.numpy().astype(np.float64) - ref)[fin].max()) if fin.any() else 0.0
            r = {'case': case, 'grid': [H, W], 'maps': B * K, 'error_fraction': float(E.float().mean()),
                 'max_distance': float(ours[torch.isfinite(ours)].max()), 'max_abs_diff': diff,
                 'ours': timed(lambda: edt(E), iters), 'scipy': timed(lambda: scipy_all(E), iters)}
            r['speedup'] = r['scipy']['median_ms'] / r['ours']['median_ms']
            rows.append(r)
            print(f"edt {case} {H}×{W}: ours {r['ours']['median_ms']:.1f} ms, scipy {r['scipy']['median_ms']:.1f} ms "
                  f"({r['speedup']:.2f}×), max |diff| {diff:.1e}, max distance {r['max_distance']:.1f}", flush=True)
    return rows


def bench_loss(iters):
    rows = []
    g = torch.Generator().manual_seed(1)
    for case, (B, K, grids, ch) in CASES.items():
        names = list(ch)
        sizes = grids if len(grids) == len(names) else [grids[0]] + [grids[1]] * (len(names) - 1)
        feats = {n: torch.randn(B, c, *s, generator=g) for (n, c), s in zip(ch.items(), sizes)}
        Hl, Wl = sizes[-1] if len(grids) == len(names) else sizes[1]
        logits = torch.randn(B, K, *(grids[1] if len(grids) == 2 else (grids[0][0] // 2, grids[0][1] // 2)), generator=g)
        _, label = class_maps(B, K, sizes[0][0] * 4, sizes[0][1] * 4, g)
        for sampling in ('random', 'bane'):
            torch.manual_seed(0)
            m = Contextrast(ch, K, features=names, sampling=sampling).train()
            def step():
                fs = {k: v.clone().requires_grad_() for k, v in feats.items()}
                m(fs, logits, label)['contextrast'].backward()
            r = {'case': case, 'sampling': sampling, 'time': timed(step, iters)}
            rows.append(r)
            print(f"loss {case} {sampling}: {r['time']['median_ms']:.1f} ms (forward + backward)", flush=True)
    return rows


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('parts', nargs='+', choices=['edt', 'loss'])
    ap.add_argument('--iters', type=int, default=5)
    ap.add_argument('--threads', type=int, default=torch.get_num_threads())
    ap.add_argument('--out')
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    res = {}
    if 'edt' in a.parts: res['edt'] = bench_edt(a.iters)
    if 'loss' in a.parts: res['loss'] = bench_loss(a.iters)
    if a.out:
        from ctxseg.provenance import result_header
        from ctxseg.engine import atomic_write_json
        atomic_write_json(a.out, {**result_header('benchmarks/contextrast.py', argv, ROOT),
                                  'inputs': {'iters': a.iters, 'threads': a.threads, 'cases': {k: {'batch': v[0], 'classes': v[1], 'grids': v[2], 'channels': v[3]} for k, v in CASES.items()}},
                                  **res})
        print('wrote', a.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
