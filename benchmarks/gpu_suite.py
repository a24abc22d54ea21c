"""The GPU suite (issue 17): one prepared script that measures, in about 8 minutes on one GPU,

1. DeepLabV3 R-50-D8 and R-101-D8 training steps at 512×1024, batch 2, in fp32 and in bf16 + channels-last (and
   bf16 + channels-last through `torch.compile` for R-50): images/s, TFLOP/s, MFU and peak memory, beside
   mmsegmentation's V100 figures for R-50-D8 (6.1 GB of training memory in fp32; 2.57 images/s at inference at
   1024×2048);
2. every method's training overhead over its own baseline at the same size, batch and precision (bf16);
3. pixel contrast's host synchronisations: in one training step (`torch.cuda.set_sync_debug_mode('warn')`, CUDA
   only), and in one training forward with the calls counted by `ctxseg.bench.HostSyncs` (any device; target:
   none, with the sync-free anchor layout that the method takes on CUDA);
4. the inference throughput of R-50-D8 at 1024×2048 (batch 1);
5. LDv2's local attention at 1/8 of 1024×2048 (C = 256, k = 5, r = 3), forward and forward + backward, against
   the unfold implementation: time and peak memory;
6. the first 200 iterations of the gpu preset `cityscapes_pixcon_aspp_r101` on a fixture in the Cityscapes
   layout (written by `ctxseg.datasets.tiny_cityscapes` at 1024×2048 and prepared by `ctxseg.datasets.prepare`;
   random weights, as the machine is offline): the loss curve and images/s (and a PNG of the curve next to the
   JSON).

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
from ctxseg import presets as P                       # noqa: E402
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
    ov = [*overrides, f'train.amp={str(amp).lower()}', f'train.channels_last={str(amp).lower()}', 'model.pretrained=']
    if a.tiny: ov += TINY
    return P.get(name, ov)


def _bench(cfg, a, size, batch=2, iters=None, warmup=None, **kw):
    if a.device == 'cuda': torch.cuda.empty_cache()
    r = benchmark(cfg, size=size, batch=batch, iters=iters or a.iters, warmup=a.warmup if warmup is None else warmup,
                  device=a.device, infer_iters=a.infer_iters, peak=a.peak_tflops, **kw)
    print(format_table([r]).splitlines()[-1], flush=True)
    return r


def host_syncs(name, a, size) -> dict:
    """Host synchronisations of one training step of `name`: reported by the CUDA sync-debug mode (forward and
    backward; None off CUDA), and counted by `HostSyncs` in the forward (any device), with the sync-free anchor
    layout forced on, as on CUDA by default. Blocky labels, so that every class has anchors."""
    from contextlib import nullcontext
    from ctxseg.bench import HostSyncs
    from ctxseg.models.segmentor import build_model
    cfg = _cfg(name, ['method.params.sync_free=true', 'method.params.warmup_iters=0']
               + (['method.params.max_views=8'] if a.tiny else []), a)
    torch.manual_seed(0)
    model = build_model(cfg, 19).to(a.device).train()
    x = torch.randn(2, 3, *size, device=a.device)
    coarse = torch.randint(0, 19, (2, 1, 4, 8), generator=torch.Generator().manual_seed(0)).float()
    y = torch.nn.functional.interpolate(coarse, size=size, mode='nearest')[:, 0].long().to(a.device)
    amp = (lambda: torch.autocast('cuda', dtype=torch.bfloat16)) if a.device == 'cuda' else nullcontext
    for _ in range(2):                                    # warm-up: lazy initialisation may synchronise once
        with amp(): model(x, y).loss.backward()
    out = {'preset': name, 'sync_free': True, 'cuda_sync_debug_train_step': None}
    with HostSyncs() as hs, amp(): o = model(x, y)
    o.loss.backward()
    out.update(counted_forward=hs.n, counted_calls=list(hs.calls), contrast=float(o.losses['contrast'].detach()))
    if a.device == 'cuda':
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter('always')
            torch.cuda.set_sync_debug_mode('warn')
            try:
                with amp(): model(x, y).loss.backward()
            finally: torch.cuda.set_sync_debug_mode('default')
        out['cuda_sync_debug_train_step'] = sum('synchroniz' in str(m.message) for m in w)
    return out


def ldv2_rows(a) -> list[dict]:
    "LDv2's local attention against unfold at 1/8 of 1024×2048 (tiny: 16×32, C = 16), forward and forward+backward."
    sys.path.insert(0, str(ROOT / 'benchmarks'))
    from gald_local_attention import run_case
    B, C, H, W = (1, 16, 16, 32) if a.tiny else (1, 256, 128, 256)
    rows = []
    for impl in ('lean', 'unfold'):
        for mode in ('fwd', 'fwd+bwd'):
            r = run_case(impl, mode, B, C, H, W, 5, 3, a.device, 1 if a.tiny else 10)
            r.pop('latency_ms_all', None)
            if a.device != 'cuda': r['peak_extra_mb'] = None       # RSS growth in a shared process means nothing
            rows.append(r)
            mem = 'n/a' if r['peak_extra_mb'] is None else f"{r['peak_extra_mb']:.0f} MB"
            print(f"   {impl:6s} {mode:7s} {r['latency_ms_median']:8.2f} ms, peak +{mem}", flush=True)
    return rows


def fixture_run(a, out_json: str | None) -> dict:
    "The first iterations of a gpu preset on a Cityscapes-layout fixture: the loss curve and images/s from log.jsonl."
    import tempfile
    from ctxseg.datasets import tiny_cityscapes, prepare
    from ctxseg.engine import train
    name = 'cityscapes_pixcon_aspp_r101'
    H, W, iters = (128, 256, 4) if a.tiny else (1024, 2048, 200)
    with tempfile.TemporaryDirectory(prefix='ctxseg-fixture-') as tmp:
        tmp = Path(tmp)
        t0 = time.time()
        tiny_cityscapes(tmp / 'raw', n=(8, 2), H=H, W=W, cell=H // 8)
        prepare('cityscapes', tmp / 'raw', tmp / 'data', subset=True, log=lambda s: None)
        t_data = time.time() - t0
        ov = [f'data.root={tmp / "data"}', f'train.iters={iters}', f'train.log_interval={1 if a.tiny else 10}',
              'train.eval_interval=0', f'train.ckpt_interval={iters}', f'train.device={a.device}', 'model.pretrained=',
              'data.num_workers=2' if a.tiny else 'data.num_workers=8']
        if a.tiny: ov += ['data.crop_size=[64, 128]', 'method.params.max_views=8']
        cfg = _cfg(name, ov, a)
        t0 = time.time()
        metrics = train(cfg, tmp / 'run', progress=False)
        t_train = time.time() - t0
        log = [json.loads(l) for l in (tmp / 'run' / 'log.jsonl').read_text().splitlines() if l.strip()]
    steps = [r for r in log if 'loss' in r and 'iter' in r]
    ips = [r['images_per_s'] for r in steps[1:] if r.get('images_per_s')]   # the first interval holds the warm-up
    out = {'preset': name, 'fixture': f'tiny_cityscapes, 8 train + 2 val images at {H}×{W}', 'iters': iters,
           'crop': list(cfg.data.crop_size), 'batch': cfg.data.batch_size,
           'loss_curve': [[r['iter'], r['loss']] for r in steps],
           'contrast_curve': [[r['iter'], r.get('contrast')] for r in steps],
           'images_per_s_median': sorted(ips)[len(ips) // 2] if ips else None,
           'max_mem_gb': max((r.get('max_mem_gb') or 0) for r in steps) or None,
           'fixture_s': t_data, 'train_s': t_train, 'final_mIoU': (metrics or {}).get('mIoU')}
    if out_json:
        import matplotlib
        matplotlib.use('Agg')                                 # a file only; the environment is left alone
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(*zip(*out['loss_curve']), label='total loss')
        if all(c[1] is not None for c in out['contrast_curve']): ax.plot(*zip(*out['contrast_curve']), label='contrast term')
        ax.set_xlabel('iteration'); ax.set_ylabel('loss'); ax.legend()
        ax.set_title(f"{name} on the fixture, {a.device}")
        png = Path(out_json).with_suffix('.fixture_loss.png')
        png.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout(); fig.savefig(png, dpi=120); plt.close(fig)
        out['loss_png'] = png.name
    return out


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

    print('5. LDv2 local attention at 1/8 of 1024×2048 against unfold', flush=True)
    out['ldv2'] = ldv2_rows(a)

    print('6. the first iterations of cityscapes_pixcon_aspp_r101 on a Cityscapes-layout fixture', flush=True)
    out['fixture_run'] = fixture_run(a, a.out)
    fr = out['fixture_run']
    print(f"   {fr['iters']} iterations, loss {fr['loss_curve'][0][1]:.3f} → {fr['loss_curve'][-1][1]:.3f}, "
          f"{fr['images_per_s_median']} images/s", flush=True)

    out['wall_time_s'] = time.time() - t0
    from ctxseg.provenance import result_header
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
