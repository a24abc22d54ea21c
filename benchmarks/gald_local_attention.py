"""GALD efficiency benchmark (issue 6): latency and peak memory of `ctxseg.methods.gald.local_attention` against the
unfold implementation, forward and forward+backward; and parameters and latency of every head at 512×512 (Table IV's
setting). Writes JSON (default `book/results/cpu/gald_efficiency.json`) with the machine, the command and the commit.

    flock /tmp/ctxseg-cpu.lock .venv/bin/python benchmarks/gald_local_attention.py            # CPU, ~5 min on 2 cores
    .venv/bin/python benchmarks/gald_local_attention.py --device cuda --out book/results/gpu/gald_efficiency.json

Each attention case runs in a fresh subprocess, so its peak memory is its own: on CPU the growth of the process's
peak resident set (ru_maxrss) over the inputs, on CUDA `torch.cuda.max_memory_allocated` over the inputs. A case
whose estimated footprint exceeds `--max-gb` is not run and is recorded as skipped, with the estimate.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sync(device):
    import torch
    if device == 'cuda': torch.cuda.synchronize()


def _time(fn, device, reps: int, warmup: int = 1) -> list[float]:
    for _ in range(warmup): fn()
    _sync(device)
    out = []
    for _ in range(reps):
        t = time.perf_counter(); fn(); _sync(device); out.append(time.perf_counter() - t)
    return out


def unfold_bytes(B, C, Cv, H, W, k) -> int:
    "Bytes of the unfold implementation's largest live tensors (fp32): unfolded key, value and their products."
    N, K = H * W, k * k
    return 4 * N * K * B * (2 * C + 2 * Cv)       # kk, q·kk (C each), vv, a·vv (Cv each)


def lean_bytes(B, C, Cv, H, W, k) -> int:
    "Bytes of the memory-lean implementation's extra tensors (fp32): attention, logits, output, one product."
    N, K = H * W, k * k
    return 4 * N * B * (2 * K + Cv + C)


def run_case(impl: str, mode: str, B: int, C: int, H: int, W: int, k: int, r: int, device: str, reps: int) -> dict:
    "One timing + peak-memory measurement (meant to run in its own process)."
    import torch
    from ctxseg.methods.gald import local_attention, local_attention_unfold
    torch.manual_seed(0)
    fn = local_attention if impl == 'lean' else local_attention_unfold
    q, key, v = (torch.randn(B, C, H, W, device=device, requires_grad=mode == 'fwd+bwd') for _ in range(3))
    if device == 'cuda':
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats(); base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def step():
        if mode == 'fwd':
            with torch.no_grad(): fn(q, key, v, k, r)
        else:
            out = fn(q, key, v, k, r)
            out.backward(torch.ones_like(out))
            for t in (q, key, v): t.grad = None

    times = _time(step, device, reps)
    peak = (torch.cuda.max_memory_allocated() if device == 'cuda'
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {'impl': impl, 'mode': mode, 'B': B, 'C': C, 'H': H, 'W': W, 'k': k, 'r': r, 'device': device,
            'latency_ms_median': 1000 * statistics.median(times), 'latency_ms_all': [1000 * t for t in times],
            'peak_extra_mb': (peak - base) / 2**20, 'reps': reps}


def attention_table(sizes, device, reps, max_gb) -> list[dict]:
    rows = []
    for (B, C, H, W, k, r) in sizes:
        for impl in ('lean', 'unfold'):
            est = (unfold_bytes if impl == 'unfold' else lean_bytes)(B, C, C, H, W, k) / 2**30
            for mode in ('fwd', 'fwd+bwd'):
                est_mode = est * (1 if mode == 'fwd' else 2)
                if est_mode > max_gb:
                    rows.append({'impl': impl, 'mode': mode, 'B': B, 'C': C, 'H': H, 'W': W, 'k': k, 'r': r, 'device': device,
                                 'skipped': f'estimated {est_mode:.1f} GB > --max-gb {max_gb}', 'estimated_gb': est_mode})
                    print(f'{impl:6s} {mode:7s} B{B} C{C} {H}×{W}: skipped (estimated {est_mode:.1f} GB)', flush=True)
                    continue
                cmd = [sys.executable, __file__, '--case', json.dumps([impl, mode, B, C, H, W, k, r, device, reps])]
                p = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, 'PYTHONPATH': str(ROOT)})
                if p.returncode != 0:
                    rows.append({'impl': impl, 'mode': mode, 'B': B, 'C': C, 'H': H, 'W': W, 'k': k, 'r': r,
                                 'device': device, 'failed': p.stderr.strip().splitlines()[-1] if p.stderr.strip() else f'rc {p.returncode}'})
                    print(f'{impl:6s} {mode:7s} B{B} C{C} {H}×{W}: failed: {rows[-1]["failed"]}', flush=True)
                    continue
                res = json.loads(p.stdout.strip().splitlines()[-1])
                res['estimated_gb'] = est_mode
                rows.append(res)
                print(f"{impl:6s} {mode:7s} B{B} C{C} {H}×{W} k{k} r{r}: {res['latency_ms_median']:9.1f} ms, "
                      f"peak +{res['peak_extra_mb']:8.1f} MB", flush=True)
    return rows


HEADS = [  # label, head name, kwargs (besides channels)
    ('FCN', 'fcn', {}),
    ('PSP', 'psp', {}),
    ('ASPP', 'aspp', {'dilations': (1, 12, 24, 36)}),
    ('NL (GALD head, no LD)', 'gald', {'ga': 'nl', 'ld': 'none'}),
    ('CGNL (GALD head, no LD)', 'gald', {'ga': 'cgnl', 'ld': 'none'}),
    ('ASPP (GALD head, no LD)', 'gald', {'ga': 'aspp', 'ld': 'none', 'dilations': (1, 12, 24, 36)}),
    ('ASPP + LDv1', 'gald', {'ga': 'aspp', 'ld': 'v1', 'dilations': (1, 12, 24, 36)}),
    ('ASPP + LDv2 (k=5, r=3)', 'gald', {'ga': 'aspp', 'ld': 'v2', 'kernel_size': 5, 'dilation': 3, 'dilations': (1, 12, 24, 36)}),
]


def head_table(size: int, device: str, reps: int, depth: int = 50) -> dict:
    "Parameters and latency (batch 1, eval, no grad) of every head on ResNet-`depth` D8 features of a size×size image."
    import torch
    from ctxseg.models.backbones import build_backbone
    from ctxseg.models.segmentor import build_head       # baselines and head methods
    torch.manual_seed(0)
    bb = build_backbone(f'resnet{depth}', stem='deep', dilation='gald', output_stride=8).eval().to(device)
    x = torch.randn(1, 3, size, size, device=device)
    with torch.no_grad():
        bb_times = _time(lambda: bb(x), device, max(1, reps // 2))
        feats = bb(x)
    out = {'backbone': {'name': f'resnet{depth} (deep stem, OS8, GALD dilations)', 'params_m': sum(p.numel() for p in bb.parameters()) / 1e6,
                        'latency_ms_median': 1000 * statistics.median(bb_times), 'feature': list(feats[-1].shape)},
           'heads': []}
    print(f"backbone: {out['backbone']['params_m']:.1f} M params, {out['backbone']['latency_ms_median']:.0f} ms, "
          f"feature {out['backbone']['feature']}", flush=True)
    for label, name, kw in HEADS:
        head = build_head(name, bb.out_channels[-1], 19, channels=512, **kw).eval().to(device)
        with torch.no_grad(): times = _time(lambda: head(feats), device, reps)
        rec = {'head': label, 'name': name, 'kwargs': {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()},
               'params_m': sum(p.numel() for p in head.parameters()) / 1e6,
               'latency_ms_median': 1000 * statistics.median(times), 'latency_ms_all': [1000 * t for t in times]}
        out['heads'].append(rec)
        print(f"{label:28s} {rec['params_m']:7.2f} M  {rec['latency_ms_median']:9.1f} ms", flush=True)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cpu')
    ap.add_argument('--out', default=str(ROOT / 'book/results/cpu/gald_efficiency.json'))
    ap.add_argument('--reps', type=int, default=3)
    ap.add_argument('--max-gb', type=float, default=6.0, help='skip attention cases estimated above this (GB)')
    ap.add_argument('--head-size', type=int, default=512)
    ap.add_argument('--skip-heads', action='store_true')
    ap.add_argument('--case', help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    import torch
    if a.case:
        impl, mode, B, C, H, W, k, r, device, reps = json.loads(a.case)
        print(json.dumps(run_case(impl, mode, B, C, H, W, k, r, device, reps)))
        return 0
    sys.path.insert(0, str(ROOT))
    from ctxseg.provenance import machine_info, git_info
    sizes = [(2, 512, 128, 256, 5, 3),       # the size: 1/8 of a 1024×2048 image, two images
             (1, 128, 64, 128, 5, 3)]        # a size where the unfold version fits too
    t0 = time.time()
    res = {'benchmark': 'gald_local_attention', 'command': ' '.join(['python', 'benchmarks/gald_local_attention.py', *(argv or sys.argv[1:])]),
           'machine': machine_info(), **git_info(ROOT), 'started': time.strftime('%Y-%m-%dT%H:%M:%S%z'),
           'torch_threads': torch.get_num_threads(), 'dtype': 'float32',
           'memory_measure': 'CUDA max_memory_allocated over the inputs' if a.device == 'cuda'
                             else 'growth of the process peak RSS (ru_maxrss) over the inputs, one process per case',
           'attention': attention_table(sizes, a.device, a.reps, a.max_gb)}
    if not a.skip_heads: res['heads'] = {'input': [1, 3, a.head_size, a.head_size], **head_table(a.head_size, a.device, a.reps)}
    res['wall_time_s'] = time.time() - t0
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + '\n')
    print(f'wrote {a.out} in {res["wall_time_s"]:.0f} s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
