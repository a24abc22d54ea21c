"""Pixel contrast benchmark (issue 5): sampling + loss of `ctxseg.methods.pixel_contrast` against a loop-structured
implementation of the same algorithm (per image, per class, as the authors' `_hard_anchor_sampling` is written), on
identical inputs; and the training-step overhead of the method over the same baseline model.

    python benchmarks/pixel_contrast.py                       # CPU, prints a table, writes nothing
    python benchmarks/pixel_contrast.py --out book/results/cpu/pixel_contrast_bench.json
    python benchmarks/pixel_contrast.py --device cuda         # also counts syncs with torch.cuda.set_sync_debug_mode

On every device it counts the host synchronisations of one call of each implementation with
`ctxseg.bench.HostSyncs` (the calls that would make the host wait for a CUDA device).

Run it under the CPU lock on a shared machine: `flock /tmp/ctxseg-cpu.lock python benchmarks/pixel_contrast.py ...`.
"""
from __future__ import annotations
import argparse, json, platform, statistics, sys, time
from pathlib import Path
import torch
import torch.nn.functional as F
from ctxseg.methods.pixel_contrast import hard_anchor_sampling, contrastive_loss, anchor_slots, slot_terms, info_nce
from ctxseg.bench import HostSyncs


def loop_sampling(emb, labels, pred, max_samples=1024, max_views=100, ignore_index=255):
    "The authors' structure: Python loops over images and classes, a nonzero and a randperm per (image, class)."
    B, D = emb.shape[:2]
    E = emb.permute(0, 2, 3, 1).reshape(B, -1, D)
    lab, prd = labels.reshape(B, -1), pred.reshape(B, -1)
    classes, total = [], 0
    for b in range(B):
        cl = [c for c in torch.unique(lab[b]).tolist() if c != ignore_index and c >= 0]
        cl = [c for c in cl if int((lab[b] == c).sum()) > max_views]
        classes.append(cl); total += len(cl)
    if total == 0: return None, None
    n_view = min(max_samples // total, max_views)
    X = torch.zeros(total, n_view, D, device=emb.device, dtype=emb.dtype)
    y = torch.zeros(total, device=emb.device)
    ptr = 0
    for b in range(B):
        for c in classes[b]:
            hard = ((lab[b] == c) & (prd[b] != c)).nonzero().flatten()
            easy = ((lab[b] == c) & (prd[b] == c)).nonzero().flatten()
            nh, ne = hard.numel(), easy.numel()
            if nh >= n_view / 2 and ne >= n_view / 2: kh = n_view // 2; ke = n_view - kh
            elif nh >= n_view / 2: ke = ne; kh = n_view - ke
            else: kh = nh; ke = n_view - kh
            hard = hard[torch.randperm(nh, device=emb.device)[:kh]]
            easy = easy[torch.randperm(ne, device=emb.device)[:ke]]
            X[ptr] = E[b, torch.cat([hard, easy])]; y[ptr] = c; ptr += 1
    return X, y


def loop_contrastive(X, y, tau=0.1, tau_base=0.07):
    "The authors' `_contrastive` (dense masks, exp/log; the loop lives in the sampling)."
    T, V, D = X.shape
    A = torch.cat(torch.unbind(X, 1))
    ya = y.repeat(V)
    mask = (ya[:, None] == ya[None]).float()
    logits = A @ A.T / tau
    logits = logits - logits.max(1, keepdim=True).values.detach()
    neg_mask = 1 - mask
    self_mask = torch.ones_like(mask); self_mask.fill_diagonal_(0)
    mask = mask * self_mask
    neg = (torch.exp(logits) * neg_mask).sum(1, keepdim=True)
    log_prob = logits - torch.log(torch.exp(logits) + neg)
    mean_log_prob_pos = (mask * log_prob).sum(1) / mask.sum(1)
    return (-(tau / tau_base) * mean_log_prob_pos).mean()


def inputs(B=2, D=256, h=128, w=256, K=19, device='cpu', seed=0):
    "Blocky label maps (a random 8×16 layout upsampled, 5% ignore), predictions 20% wrong, unit embeddings."
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, K, (B, 1, 8, 16), generator=g).float()
    labels = F.interpolate(coarse, size=(h, w), mode='nearest')[:, 0].long()
    labels[torch.rand(B, h, w, generator=g) < 0.05] = 255
    wrong = torch.rand(B, h, w, generator=g) < 0.2
    pred = torch.where(wrong, torch.randint(0, K, (B, h, w), generator=g), labels.clamp(max=K - 1))
    emb = F.normalize(torch.randn(B, D, h, w, generator=g), dim=1)
    return emb.to(device), labels.to(device), pred.to(device)


def timeit(fn, device, reps, warmup=3):
    for _ in range(warmup): fn()
    ts = []
    for _ in range(reps):
        if device == 'cuda': torch.cuda.synchronize()
        t = time.perf_counter(); fn()
        if device == 'cuda': torch.cuda.synchronize()
        ts.append(time.perf_counter() - t)
    return {'median_ms': 1e3 * statistics.median(ts), 'min_ms': 1e3 * min(ts), 'reps': reps}


def count_host_syncs(fn):
    "Host synchronisations of one call of `fn`, by name, counted by `ctxseg.bench.HostSyncs` on any device."
    with HostSyncs() as hs: fn()
    names = {}
    for c in hs.calls: names[c] = names.get(c, 0) + 1
    return {'n': hs.n, 'by_call': names}


def count_syncs(fn):
    "Host synchronisations of `fn` on CUDA, counted as the warnings of torch.cuda.set_sync_debug_mode('warn')."
    import warnings
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter('always')
        torch.cuda.set_sync_debug_mode('warn'); fn(); torch.cuda.set_sync_debug_mode(0)
    return sum('synchroniz' in str(x.message) for x in w)


def step_overhead(device, reps):
    "Forward + backward of one training batch of the cpu preset, baseline vs + pixel contrast (after warm-up)."
    from ctxseg import presets as P
    from ctxseg.models.segmentor import build_model
    res = {}
    x = torch.randn(8, 3, 96, 96, device=device); yy = torch.randint(0, 6, (8, 96, 96), device=device)
    for name in ('synthetic_aspp', 'synthetic_aspp_pixcon'):
        torch.manual_seed(0)
        cfg = P.get(name, ['method.params.warmup_iters=0'] if 'pixcon' in name else [])
        m = build_model(cfg, 6).to(device).train()
        def step():
            out = m(x, yy); out.loss.backward(); m.zero_grad(set_to_none=True)
        res[name] = timeit(step, device, reps)
        if device == 'cuda':
            torch.cuda.reset_peak_memory_stats(); step(); res[name]['peak_mem_mb'] = torch.cuda.max_memory_allocated() / 2**20
    res['overhead_pct'] = 100 * (res['synthetic_aspp_pixcon']['median_ms'] / res['synthetic_aspp']['median_ms'] - 1)
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--device', default='cpu'); ap.add_argument('--reps', type=int, default=60)
    ap.add_argument('--out', default=''); ap.add_argument('--no-step', action='store_true')
    a = ap.parse_args(argv)
    dev = a.device
    emb, labels, pred = inputs(device=dev)
    K = 19
    sample = lambda: hard_anchor_sampling(emb, labels, pred, num_classes=K)     # as `PixelContrast` calls it
    X, y = sample()
    Xl, yl = loop_sampling(emb, labels, pred)
    assert X.shape == Xl.shape and torch.equal(y.float(), yl), 'the two implementations disagree on the anchor groups'
    ours = lambda: contrastive_loss(*sample(), max_groups=emb.shape[0])          # as `PixelContrast` calls it
    loop = lambda: loop_contrastive(*loop_sampling(emb, labels, pred))
    slots = lambda: anchor_slots(emb, labels, pred, K)                           # the sync-free layout (CUDA's default)
    sync_free = lambda: info_nce(*slot_terms(*slots()))
    gen = lambda: torch.Generator(device=dev).manual_seed(0)
    same = (contrastive_loss(*hard_anchor_sampling(emb, labels, pred, generator=gen(), num_classes=K), max_groups=2),
            info_nce(*slot_terms(*anchor_slots(emb, labels, pred, K, generator=gen()))))
    assert torch.allclose(*same, rtol=1e-5), f'the sync-free layout computes another loss: {same}'
    res = {'inputs': {'B': 2, 'D': 256, 'h': 128, 'w': 256, 'classes': 19, 'max_samples': 1024, 'max_views': 100,
                      'T': int(X.shape[0]), 'V': int(X.shape[1])},
           'sampling': {'ours': timeit(sample, dev, a.reps),
                        'loop': timeit(lambda: loop_sampling(emb, labels, pred), dev, a.reps),
                        'sync_free': timeit(slots, dev, a.reps)},
           'sampling+loss': {'ours': timeit(ours, dev, a.reps), 'loop': timeit(loop, dev, a.reps),
                             'sync_free': timeit(sync_free, dev, a.reps)}}
    for k in ('sampling', 'sampling+loss'):
        res[k]['speedup'] = res[k]['loop']['median_ms'] / res[k]['ours']['median_ms']
        res[k]['speedup_sync_free'] = res[k]['loop']['median_ms'] / res[k]['sync_free']['median_ms']
    res['host_syncs_counted'] = {'ours': count_host_syncs(ours), 'sync_free': count_host_syncs(sync_free),
                                 'loop': count_host_syncs(loop)}
    if dev == 'cuda': res['host_syncs'] = {'ours': count_syncs(ours), 'sync_free': count_syncs(sync_free), 'loop': count_syncs(loop)}
    if not a.no_step: res['train_step'] = step_overhead(dev, max(a.reps // 2, 5))
    res['machine'] = {'device': torch.cuda.get_device_name() if dev == 'cuda' else (platform.processor() or platform.machine()),
                      'threads': torch.get_num_threads(), 'torch': torch.__version__, 'python': platform.python_version()}
    res['command'] = 'python benchmarks/pixel_contrast.py ' + ' '.join(argv if argv is not None else sys.argv[1:])
    for k in ('sampling', 'sampling+loss'):
        print(f"{k:14s} ours {res[k]['ours']['median_ms']:8.2f} ms   loop {res[k]['loop']['median_ms']:8.2f} ms   "
              f"speed-up {res[k]['speedup']:.2f}×   sync-free {res[k]['sync_free']['median_ms']:8.2f} ms "
              f"({res[k]['speedup_sync_free']:.2f}×)")
    if 'train_step' in res:
        t = res['train_step']
        print(f"train step     baseline {t['synthetic_aspp']['median_ms']:.1f} ms   + pixel contrast "
              f"{t['synthetic_aspp_pixcon']['median_ms']:.1f} ms   overhead {t['overhead_pct']:+.1f} %")
    hc = res['host_syncs_counted']
    print(f"host syncs per sampling+loss call (HostSyncs): ours {hc['ours']['n']} {hc['ours']['by_call']}, "
          f"sync-free {hc['sync_free']['n']}, loop {hc['loop']['n']}")
    if 'host_syncs' in res: print('host syncs (cuda sync debug mode)', res['host_syncs'])
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=2) + '\n'); print('wrote', a.out)
    return res


if __name__ == '__main__':
    main()
