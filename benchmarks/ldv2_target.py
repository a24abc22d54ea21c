"""LDv2 target benchmark (issue 17): `ctxseg.methods.gald.local_attention` against `local_attention_unfold`, forward,
at the issue's case (B = 1, C = 256, 97×97, k = 5, r = 3), on an idle machine and again while a second process
multiplies matrices on every core (the load that made the first implementation's ratio swing from 0.9× to 3×).

    python benchmarks/ldv2_target.py --out book/results/cpu/ldv2_target_bench.json

Run it with nothing else running: the loaded half brings its own load.
"""
from __future__ import annotations
import argparse, multiprocessing as mp, statistics, sys, time
from pathlib import Path
import torch
from ctxseg.methods.gald import local_attention, local_attention_unfold

ROOT = Path(__file__).resolve().parents[1]


def _load(seconds: float):
    "A competing process: dense matrix products on every core for `seconds`."
    a = torch.randn(1500, 1500); t = time.time()
    while time.time() - t < seconds: a @ a


def measure(reps: int) -> dict:
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 256, 97, 97) for _ in range(3))
    out = {}
    with torch.no_grad():
        assert torch.allclose(local_attention(q, k, v, 5, 3), local_attention_unfold(q, k, v, 5, 3), atol=1e-4)
        for name, fn in (('ours', lambda: local_attention(q, k, v, 5, 3)), ('unfold', lambda: local_attention_unfold(q, k, v, 5, 3))):
            fn(); ts = []
            for _ in range(reps):
                t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
            out[name] = {'median_ms': 1e3 * statistics.median(ts), 'min_ms': 1e3 * min(ts), 'max_ms': 1e3 * max(ts)}
    out['speedup'] = out['unfold']['median_ms'] / out['ours']['median_ms']
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--reps', type=int, default=7)
    ap.add_argument('--out')
    a = ap.parse_args(argv)
    res = {'idle': measure(a.reps)}
    p = mp.get_context('spawn').Process(target=_load, args=(60.0,)); p.start(); time.sleep(2)
    try: res['loaded'] = measure(a.reps)
    finally: p.terminate(); p.join()
    for k, r in res.items():
        print(f"{k}: ours {r['ours']['median_ms']:.1f} ms, unfold {r['unfold']['median_ms']:.1f} ms, speed-up {r['speedup']:.2f}×")
    if a.out:
        from ctxseg.provenance import result_header
        from ctxseg.engine import atomic_write_json
        atomic_write_json(a.out, {**result_header('benchmarks/ldv2_target.py', argv, ROOT),
                                  'inputs': {'B': 1, 'C': 256, 'H': 97, 'W': 97, 'k': 5, 'r': 3, 'reps': a.reps,
                                             'threads': torch.get_num_threads(), 'load': 'a second process: 1500×1500 matmuls on all cores'},
                                  **res})
        print('wrote', a.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
