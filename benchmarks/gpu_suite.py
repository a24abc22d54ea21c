"""The GPU suite (issue 17): one prepared script that measures, in about 8 minutes on one GPU,

1. DeepLabV3 R-50-D8 and R-101-D8 training steps at 512×1024, batch 2, in fp32 and in bf16 + channels-last (and
   bf16 + channels-last through `torch.compile` for R-50): images/s, TFLOP/s, MFU and peak memory, beside
   mmsegmentation's V100 figures for R-50-D8 (6.1 GB of training memory in fp32; 2.57 images/s at inference at
   1024×2048);
2. every method's training overhead over its own baseline at the same size, batch and precision (bf16);
3. pixel contrast's host synchronisations in one training step (`torch.cuda.set_sync_debug_mode('warn')`);
4. the inference throughput of R-50-D8 at 1024×2048 (batch 1).

It writes one JSON with the hardware, torch and CUDA versions:

    python benchmarks/gpu_suite.py --out book/results/gpu/gpu_suite.json     # on a CUDA machine
    python benchmarks/gpu_suite.py --tiny --device cpu --out /tmp/suite.json  # CI: tiny models, a minute on CPU

`--tiny` shrinks every network (base width 8, 32 head channels) and the input (64×128), so that the whole suite
runs on a CPU in CI and is never broken when a GPU appears; its numbers mean nothing.
Run it alone: a second process on the same device makes every time meaningless.
"""
from __future__ import annotations
import argparse, json, sys, time, warnings
from pathlib import Path
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ctxseg import configs as C                       # noqa: E402
from ctxseg.bench import benchmark, format_table      # noqa: E402

# mmsegmentation's model zoo, DeepLabV3 R-50-D8, Cityscapes 512×1024, 40k schedule (V100): quoted, not measured
MMSEG_V100 = {'train_mem_gb_fp32': 6.1, 'infer_fps_1024x2048': 2.57,
              'source': 'open-mmlab/mmsegmentation configs/deeplabv3/README.md (quoted)'}
R50 = ('cityscapes_aspp_r101', ['model.backbone=resnet50'])            # the R-101 preset with a ResNet-50-D8
R101 = ('cityscapes_aspp_r101', [])
# (method preset, its baseline preset): each method against the network it is added to, at the same size
METHODS = [('cityscapes_pixcon_aspp_r101', 'cityscapes_pixcon_base_aspp_r101'),
           ('cityscapes_regcon_r50', 'cityscapes_regcon_base_r50'),
           ('cityscapes_mcibi_r101', 'cityscapes_aspp_r101'),
           ('cityscapes_gald_aspp_ldv2_r101', 'cityscapes_aspp_r101'),
           ('contextrast_cityscapes_aspp_r101', 'contextrast_cityscapes_aspp_r101_baseline')]
TINY = ['model.base_width=8', 'model.head_channels=32', 'model.aux_channels=16', 'model.pretrained=']


def _cfg(name, overrides, a, amp=True):
    ov = [*overrides, f'train.amp={str(amp).lower()}', f'train.channels_last={str(amp).lower()}']
    if a.tiny: ov += TINY
    return C.get(name, ov)


def _bench(cfg, a, size, batch=2, iters=None, warmup=None, **kw):
    if a.device == 'cuda': torch.cuda.empty_cache()
    r = benchmark(cfg, size=size, batch=batch, iters=iters or a.iters, warmup=a.warmup if warmup is None else warmup,
                  device=a.device, infer_iters=a.infer_iters, peak=a.peak_tflops, **kw)
    print(format_table([r]).splitlines()[-1], flush=True)
    return r


def host_syncs(name, a, size) -> int | None:
    "Host synchronisations the CUDA sync-debug mode reports in one training step of `name` (None off CUDA)."
    if a.device != 'cuda': return None
    from ctxseg.models.segmentor import build_model
    cfg = _cfg(name, [], a)
    torch.manual_seed(0)
    model = build_model(cfg, 19).cuda().train()
    x = torch.randn(2, 3, *size, device='cuda'); y = torch.randint(0, 19, (2, *size), device='cuda')
    for _ in range(2):                                    # warm-up: lazy initialisation may synchronise once
        with torch.autocast('cuda', dtype=torch.bfloat16): model(x, y).loss.backward()
    torch.cuda.synchronize()
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn')
        try:
            with torch.autocast('cuda', dtype=torch.bfloat16): model(x, y).loss.backward()
        finally: torch.cuda.set_sync_debug_mode('default')
    return sum('synchroniz' in str(m.message) for m in w)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu', choices=['cuda', 'cpu'])
    ap.add_argument('--tiny', action='store_true', help='tiny networks and inputs: a check that the suite runs (CI)')
    ap.add_argument('--iters', type=int, default=None, help='timed training steps per row (default 10; tiny: 1)')
    ap.add_argument('--warmup', type=int, default=None, help='untimed steps first (default 5; tiny: 0)')
    ap.add_argument('--infer-iters', type=int, default=None)
    ap.add_argument('--no-compile', action='store_true', help='skip the torch.compile row (always skipped on CPU)')
    ap.add_argument('--peak-tflops', type=float, default=None, help='peak TFLOP/s for the MFU (default: ctxseg.bench.PEAK_TFLOPS)')
    ap.add_argument('--out', help='write the JSON here')
    a = ap.parse_args(argv)
    if a.device == 'cuda' and not torch.cuda.is_available():
        print('gpu_suite: no CUDA device here; use --device cpu (with --tiny)', file=sys.stderr); return 2
    if a.device == 'cpu' and not a.tiny:
        print('gpu_suite: the full suite on a CPU takes hours; use --tiny', file=sys.stderr); return 2
    a.iters = a.iters or (1 if a.tiny else 10)
    a.warmup = a.warmup if a.warmup is not None else (0 if a.tiny else 5)
    a.infer_iters = a.infer_iters or (1 if a.tiny else 10)
    if a.device == 'cuda': torch.backends.cudnn.benchmark = True
    crop = (64, 128) if a.tiny else (512, 1024)
    full = (128, 256) if a.tiny else (1024, 2048)
    t0 = time.time()
    out = {'suite': 'benchmarks/gpu_suite.py', 'tiny': a.tiny, 'device': a.device, 'torch': torch.__version__,
           'cuda': torch.version.cuda, 'cudnn_benchmark': torch.backends.cudnn.benchmark, 'crop': list(crop),
           'mmseg_v100_r50_d8': MMSEG_V100}

    print('1. DeepLabV3 training steps', flush=True)
    base = []
    for label, (name, ov) in (('R-50-D8', R50), ('R-101-D8', R101)):
        for amp in (False, True):
            r = _bench(_cfg(name, ov, a, amp=amp), a, crop)
            base.append({'model': label, 'precision': 'bf16 + channels-last' if amp else 'fp32', **r})
    if not a.no_compile and a.device == 'cuda':          # on CPU, inductor's compile alone takes minutes
        r = _bench(_cfg(*R50, a), a, crop, compile=True)
        base.append({'model': 'R-50-D8', 'precision': 'bf16 + channels-last + torch.compile', **r})
    out['baselines'] = base

    print('2. method overheads (bf16 + channels-last, same size and batch)', flush=True)
    over = []
    for method, baseline in METHODS:
        m, b = _bench(_cfg(method, [], a), a, crop), _bench(_cfg(baseline, [], a), a, crop)
        over.append({'method': method, 'baseline': baseline, 'method_row': m, 'baseline_row': b,
                     'step_overhead': m['train_step_ms'] / b['train_step_ms'] - 1,
                     'extra_peak_mem_mb': m['peak_mem_mb'] - b['peak_mem_mb'],
                     'extra_infer_gflops': m['infer_gflops'] - b['infer_gflops']})
        print(f"   {method}: step +{100 * over[-1]['step_overhead']:.1f} % over {baseline}", flush=True)
    out['overheads'] = over

    print('3. host synchronisations in one pixel-contrast training step', flush=True)
    out['pixel_contrast_host_syncs'] = host_syncs('cityscapes_pixcon_aspp_r101', a, crop)
    print(f"   {out['pixel_contrast_host_syncs']}", flush=True)

    print(f'4. R-50-D8 inference at {full[0]}×{full[1]}', flush=True)
    r = _bench(_cfg(*R50, a), a, full, iters=1, warmup=1)     # inference is timed on one image; training: one step
    out['inference_full'] = {**r, 'images_per_s': 1e3 / r['infer_latency_ms']}

    out['wall_time_s'] = time.time() - t0
    from ctxseg.runner import result_header
    out = {**result_header('benchmarks/gpu_suite.py', argv, ROOT), **out}
    if a.out:
        from ctxseg.engine import atomic_write_json
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(a.out, out)
        print('wrote', a.out)
    print(f"done in {out['wall_time_s']:.0f} s")
    return 0


if __name__ == '__main__':
    sys.exit(main())
