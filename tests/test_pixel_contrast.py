"""Pixel contrast (issue 5): the two public functions against loop implementations written here to follow the loop structure of the authors' code
(tfzhou/ContrastiveSeg lib/loss/loss_contrast.py), the queues (wrap-around, exact resume), two gloo ranks holding identical queues filled from both,
inference cost equal to the baseline's, and the degenerate cases (nothing eligible, no positive).

Time: about half a minute (two short smoke trainings and one 2-process torchrun)."""
from __future__ import annotations
import collections, json, math, os, subprocess, sys
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from ctxseg import presets as P
from ctxseg.methods.common import ClassQueue, all_gather_cat, labels_to_grid
from ctxseg.methods.pixel_contrast import (hard_anchor_sampling, contrastive_loss, mine, PixelContrast,
                                           _authors_pixel_push)
from ctxseg.models.segmentor import build_model

HERE = Path(__file__).parent


# ------------------------------------------------------------------------------- loop references (from the spec)
def loop_sampling(emb, labels, pred, max_samples, max_views, ignore_index, perm):
    """Per image, per class, as the authors wrote it; a subset of k pixels = the k with the smallest value of `perm`
    (the random permutation of all B·h·w pixels that ours draws from the same generator)."""
    B, D, h, w = emb.shape
    pairs = []
    for b in range(B):
        lb = labels[b].flatten()
        classes = sorted(int(c) for c in torch.unique(lb) if int(c) != ignore_index and int(c) >= 0)
        for c in classes:
            if int((lb == c).sum()) > max_views: pairs.append((b, c))
    if not pairs: return None, None
    T = len(pairs)
    n_view = min(max_samples // T, max_views)
    X, y = [], []
    for b, c in pairs:
        lb, pb = labels[b].flatten(), pred[b].flatten()
        E = emb[b].reshape(D, -1).T
        hard = [i for i in range(h * w) if lb[i] == c and pb[i] != c]
        easy = [i for i in range(h * w) if lb[i] == c and pb[i] == c]
        nh, ne = len(hard), len(easy)
        if nh >= n_view / 2 and ne >= n_view / 2: kh = n_view // 2; ke = n_view - kh
        elif nh >= n_view / 2: ke = ne; kh = n_view - ke
        elif ne >= n_view / 2: kh = nh; ke = n_view - kh
        else: raise AssertionError('impossible: the class has more than max_views pixels')
        key = lambda i: int(perm[b * h * w + i])
        hard, easy = sorted(hard, key=key)[:kh], sorted(easy, key=key)[:ke]
        X.append(torch.stack([E[i] for i in hard + easy])); y.append(c)
    return torch.stack(X), torch.tensor(y)


def loop_loss(X, y, tau, tau_base):
    "The spec's `_contrastive`, anchor by anchor and positive by positive."
    T, V, D = X.shape
    A = [X[t, v] for v in range(V) for t in range(T)]             # view-major
    L = [int(y[t]) for v in range(V) for t in range(T)]
    N = len(A)
    total, count = 0.0, 0
    for i in range(N):
        s = [float(A[i] @ A[k]) / tau for k in range(N)]
        mx = max(s)
        s = [v - mx for v in s]
        neg = sum(math.exp(s[k]) for k in range(N) if L[k] != L[i])
        pos = [j for j in range(N) if j != i and L[j] == L[i]]
        if not pos: continue
        lp = [s[j] - math.log(math.exp(s[j]) + neg) for j in pos]
        total += -(tau / tau_base) * sum(lp) / len(lp); count += 1
    return total / count


def _case(seed, B=2, K=4, h=9, w=11, D=5, ignore=255):
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, K, (B, h, w), generator=g)
    labels[torch.rand(B, h, w, generator=g) < 0.1] = ignore
    pred = torch.where(torch.rand(B, h, w, generator=g) < 0.3, torch.randint(0, K, (B, h, w), generator=g), labels)
    emb = F.normalize(torch.randn(B, D, h, w, generator=g), dim=1)
    return emb, labels, pred


@pytest.mark.parametrize('seed,max_samples,max_views', [(0, 1024, 10), (1, 40, 12), (2, 64, 3), (3, 7, 20), (4, 1024, 1)])
def test_sampling_matches_the_loop_implementation(seed, max_samples, max_views):
    emb, labels, pred = _case(seed)
    X, y = hard_anchor_sampling(emb, labels, pred, max_samples, max_views, 255, generator=torch.Generator().manual_seed(7))
    perm = torch.randperm(labels.numel(), generator=torch.Generator().manual_seed(7))
    Xr, yr = loop_sampling(emb, labels, pred, max_samples, max_views, 255, perm)
    assert Xr is not None and torch.equal(y, yr) and torch.equal(X, Xr)


def test_sampling_selects_the_right_pixels_with_any_randomness():
    "Without shared randomness: every row of a group is a pixel of its class, hard ones first, with the spec's counts."
    emb, labels, pred = _case(5, B=3, K=3, h=16, w=16)
    emb = emb.double(); D = emb.shape[1]
    X, y = hard_anchor_sampling(emb, labels, pred, max_samples=300, max_views=40)
    Xr, yr = loop_sampling(emb, labels, pred, 300, 40, 255, torch.arange(labels.numel()))
    assert torch.equal(y, yr) and X.shape == Xr.shape
    ident = {tuple(emb[b, :, i, j].tolist()): (b, int(labels[b, i, j]), bool(pred[b, i, j] != labels[b, i, j]))
             for b in range(3) for i in range(16) for j in range(16)}
    for t in range(X.shape[0]):
        got = [ident[tuple(r.tolist())] for r in X[t]]
        ref = [ident[tuple(r.tolist())] for r in Xr[t]]
        assert len(set(map(tuple, X[t].tolist()))) == X.shape[1]                       # no pixel twice
        assert [g[1] for g in got] == [int(y[t])] * X.shape[1] and len({g[0] for g in got}) == 1
        assert [g[2] for g in got] == [r[2] for r in ref]                              # same hard/easy pattern


def test_nothing_eligible_returns_empty_and_the_loss_is_zero_with_a_gradient():
    emb, labels, pred = _case(0)
    emb.requires_grad_()
    X, y = hard_anchor_sampling(emb, labels, pred, max_views=10_000)
    assert X.shape[0] == 0 and y.shape == (0,)
    X, y = hard_anchor_sampling(emb, torch.full_like(labels, 255), pred)
    assert X.shape[0] == 0
    l = contrastive_loss(X, y); l.backward()
    assert float(l.detach()) == 0.0 and emb.grad is not None and torch.isfinite(emb.grad).all()


@pytest.mark.parametrize('seed,tau,tau_base', [(0, 0.1, 0.07), (1, 0.07, 0.07), (2, 0.5, 0.1), (3, 0.05, 0.07)])
def test_loss_matches_the_loop_implementation_in_float64(seed, tau, tau_base):
    g = torch.Generator().manual_seed(seed)
    T, V, D = 5, 4, 8
    X = F.normalize(torch.randn(T, V, D, generator=g, dtype=torch.float64), dim=-1)
    y = torch.tensor([0, 2, 2, 1, 0])
    assert abs(float(contrastive_loss(X, y, tau, tau_base)) - loop_loss(X, y, tau, tau_base)) < 1e-6
    # and on anchors produced by the sampler (mixed hard/easy counts)
    emb, labels, pred = _case(seed, D=6)
    Xs, ys = hard_anchor_sampling(emb.double(), labels, pred, 60, 8)
    assert abs(float(contrastive_loss(Xs, ys, tau, tau_base)) - loop_loss(Xs, ys, tau, tau_base)) < 1e-6


def test_no_positive_and_no_negative_cases():
    X = F.normalize(torch.randn(3, 1, 8, dtype=torch.float64), dim=-1).requires_grad_()
    l = contrastive_loss(X, torch.tensor([0, 1, 2])); l.backward()                # V=1: no anchor has a positive
    assert float(l) == 0.0 and torch.equal(X.grad, torch.zeros_like(X))
    X2 = F.normalize(torch.randn(1, 4, 8, dtype=torch.float64), dim=-1).requires_grad_()
    l2 = contrastive_loss(X2, torch.tensor([3])); l2.backward()                     # one class: no negative, log p = 0
    assert float(l2) == 0.0 and torch.isfinite(X2.grad).all()
    # one class without positives among others that have them: left out of the mean, as the loop does
    X3 = F.normalize(torch.randn(3, 2, 8, dtype=torch.float64), dim=-1)
    y3 = torch.tensor([0, 1, 1])
    assert abs(float(contrastive_loss(X3, y3)) - loop_loss(X3, y3, 0.1, 0.07)) < 1e-6


def test_mining_counts():
    g = torch.Generator().manual_seed(0)
    S = torch.randn(6, 50, generator=g)
    mask = torch.rand(6, 50, generator=g) < 0.6
    hard = mine(S, mask, 3, 'hardest')
    for i in range(6):
        cand = sorted(torch.nonzero(mask[i]).flatten().tolist(), key=lambda j: -float(S[i, j]))
        assert set(torch.nonzero(hard[i]).flatten().tolist()) == set(cand[:3])
    semi = mine(S, mask, 2, 'semi_hard', ratio=0.25, generator=torch.Generator().manual_seed(1))
    for i in range(6):
        cand = sorted(torch.nonzero(mask[i]).flatten().tolist(), key=lambda j: -float(S[i, j]))
        top = set(cand[:math.ceil(0.25 * len(cand))])
        sel = set(torch.nonzero(semi[i]).flatten().tolist())
        assert len(sel) == min(2, len(top)) and sel <= top


# ------------------------------------------------------------------------------------------------ queues
def test_queue_wraps_around_like_a_fifo():
    g = torch.Generator().manual_seed(0)
    K, M = 3, 5
    q = ClassQueue(K, M, 1)
    ref = [collections.deque(maxlen=M) for _ in range(K)]
    written = [0] * K
    val = 0
    for step in range(12):
        n = int(torch.randint(0, 9, (1,), generator=g))
        labels = torch.randint(0, K, (n,), generator=g)
        items = torch.arange(val, val + n, dtype=torch.float32)[:, None]; val += n
        q.push(items, labels)
        for x, c in zip(items[:, 0].tolist(), labels.tolist()):
            ref[c].append(x); written[c] += 1
        for c in range(K):
            assert int(q.ptr[c]) == written[c] % M                                   # advanced by the number written
            assert int(q.filled[c]) == min(written[c], M)
            slots = [(written[c] - len(ref[c]) + r) % M for r in range(len(ref[c]))]
            assert [float(q.queue[c, s, 0]) for s in slots] == list(ref[c])


def test_queue_rejects_bad_input_and_detaches():
    q = ClassQueue(2, 4, 3)
    with pytest.raises(ValueError, match='labels must lie in'): q.push(torch.zeros(1, 3), torch.tensor([2]))
    with pytest.raises(ValueError, match='N×3'): q.push(torch.zeros(1, 4), torch.tensor([0]))
    x = torch.ones(2, 3, requires_grad=True)
    q.push(x * 2, torch.tensor([0, 1]))
    assert not q.queue.requires_grad and q.queue.grad_fn is None


def test_authors_pointer_rule():
    q = ClassQueue(2, 6, 1)
    _authors_pixel_push(q, torch.arange(4.)[:, None], torch.tensor([0, 0, 0, 1]), torch.zeros(4, dtype=torch.long), 1)
    assert q.ptr.tolist() == [1, 1]                                                   # +1, not +3
    _authors_pixel_push(q, torch.arange(10., 15.)[:, None], torch.zeros(5, dtype=torch.long), torch.zeros(5, dtype=torch.long), 1)
    assert q.ptr.tolist() == [0, 1] and q.queue[0, 1:, 0].tolist() == [10., 11., 12., 13., 14.]   # 1+5 ≥ 6: last 5 slots


# ------------------------------------------------------------------------------------ method in a model
PARAMS = {'feature': 'layer4', 'max_views': 2, 'max_samples': 64, 'memory': True, 'pixel_memory_size': 16,
          'segment_memory_size': 6, 'pixel_update_freq': 3, 'warmup_iters': 2, 'loss_weight': 1.0, 'proj_dim': 16,
          'num_positives': 8, 'num_negatives': 16}


def _cfg(extra=()):
    return P.get('smoke', ['method.name=pixel_contrast', f'method.params={json.dumps(PARAMS)}', *extra])


def test_method_warms_up_then_contributes_and_has_no_nan_on_empty_batches():
    torch.manual_seed(0)
    m = build_model(_cfg(), num_classes=5).train()
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 5, (2, 32, 32))
    vals = [float(m(x, y).losses['contrast']) for _ in range(3)]
    assert vals[:2] == [0.0, 0.0] and vals[2] > 0
    out = m(x, torch.full_like(y, 255))                                                # all ignored: nothing eligible
    out.loss.backward()
    assert float(out.losses['contrast']) == 0.0
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
    assert m.method.proj.proj[0].weight.grad is not None


def test_in_batch_loss_reads_back_one_number_per_step():
    "The in-batch method's training forward makes one host sync (T, the count of anchor groups), counted by HostSyncs."
    from ctxseg.bench import HostSyncs
    torch.manual_seed(0)
    cfg = P.get('synthetic_aspp_pixcon_batch', ['method.params.warmup_iters=0'])
    m = build_model(cfg, num_classes=6).train()
    x, y = torch.randn(2, 3, 96, 96), torch.randint(0, 6, (2, 96, 96))
    m(x, y)                                                                  # the first step reads the step counter
    with HostSyncs() as hs: out = m(x, y)
    assert float(out.losses['contrast']) > 0 and hs.calls == ['__int__'], hs.calls


def test_resume_restores_queues_pointers_and_counter_exactly(tmp_path, resume_pair):
    base = _cfg(['train.iters=5', 'train.deterministic=true', 'train.ckpt_interval=100'])
    a, b, mid = resume_pair(base, tmp_path)
    assert int(mid['method.counter.steps']) == 3 and int(mid['method.pixel_queue.filled'].sum()) > 0
    keys = [k for k in a if k.startswith('method.')]
    assert {'method.pixel_queue.queue', 'method.pixel_queue.ptr', 'method.segment_queue.ptr', 'method.counter.steps'} <= set(keys)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert int(a['method.counter.steps']) == 5
    # a state_dict round trip into a fresh model restores the same
    from ctxseg.synthetic import CLASSES
    m = build_model(base, len(CLASSES)); m.load_state_dict(a)
    assert torch.equal(m.method.segment_queue.queue, a['method.segment_queue.queue'])


def test_eval_has_the_cost_and_outputs_of_the_baseline():
    from torch.utils.flop_counter import FlopCounterMode
    torch.manual_seed(0)
    ours = build_model(_cfg(), num_classes=5).eval()
    base = build_model(P.get('smoke'), num_classes=5).eval()
    missing = base.load_state_dict({k: v for k, v in ours.state_dict().items() if not k.startswith('method.')}, strict=True)
    x = torch.randn(2, 3, 32, 32)
    flops = []
    with torch.no_grad():
        for m in (ours, base):
            with FlopCounterMode(display=False) as fc: out = m(x, torch.randint(0, 5, (2, 32, 32)))
            flops.append((fc.get_total_flops(), out.logits))
    assert flops[0][0] == flops[1][0] > 0 and torch.equal(flops[0][1], flops[1][1])
    assert sum(p.numel() for p in ours.method.parameters()) > 0                        # the head exists, and costs nothing


def test_the_method_plugs_into_every_baseline_head():
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 5, (2, 32, 32))
    for head in ['fcn', 'psp', 'aspp', 'ocr']:
        for feat in ['layer4', 'rep', 'layer1']:
            p = {**PARAMS, 'feature': feat, 'warmup_iters': 0}
            m = build_model(P.get('smoke', [f'model.head={head}', 'method.name=pixel_contrast',
                                            f'method.params={json.dumps(p)}']), 5).train()
            o = m(x, y); assert torch.isfinite(o.loss) and 'contrast' in o.losses


def test_gpu_presets_build():
    for n, feat, cin in [('cityscapes_pixcon_hr48', 'concat', 720), ('cityscapes_pixcon_aspp_r101', 'layer4', 2048)]:
        cfg = P.get(n, ['model.pretrained='])                     # no ImageNet download in a test
        assert cfg.method.params['feature'] == feat and cfg.train.iters == 40000 and cfg.data.crop_size == [512, 1024]
        assert cfg.data.batch_size * cfg.train.gpus == 8 and cfg.data.aspect_range == [0.9, 1.1]
        m = build_model(cfg, 19)
        assert m.method.proj.proj[0].in_channels == cin and m.loss is not None


# ----------------------------------------------------------------------------------------- two gloo ranks
def test_two_ranks_hold_identical_queues_filled_from_both(tmp_path, torchrun):
    r = torchrun(HERE / 'ddp_pixcon_worker.py', tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path / 'pixcon_ddp.json').read_text())
    assert res['world'] == 2
    assert res['queues_equal'], res                      # queues, pointers, fill counts and step counter bit-identical on both ranks
    assert res['local_counts'][0] > 0 and res['local_counts'][1] > 0
    assert res['filled'] == sum(res['local_counts'])      # the segment queue holds the entries of both ranks ...
    assert res['found_from_rank'] == [True, True]         # ... which are found in it, rank by rank
    assert res['train_buffers_equal'] and res['train_params_equal']


def test_authors_memory_loss_matches_the_spec_loop():
    """authors_code: anchors against [classes 1..K-1 of cat((segment_queue, pixel_queue), 1)] + 2M zero rows labelled
    0, the diagonal dropped from the positives (`_contrastive` / `ContrastCELoss` in ContrastiveSeg
    `lib/loss/loss_contrast.py`). With fewer anchors than segment entries the diagonal falls on segment entries
    only, so the order of the two queues changes the loss and this test tells them apart."""
    torch.manual_seed(0)
    K, M, D = 4, 5, 6
    m = PixelContrast(5, K, memory=True, authors_code=True, pixel_memory_size=M, segment_memory_size=M, proj_dim=D,
                      temperature=0.1, base_temperature=0.07).double()
    ent, lbl, _ = m.memory_bank()
    assert torch.equal(ent[:M], m.segment_queue.queue[1]) and torch.equal(ent[M:2 * M], m.pixel_queue.queue[1])
    X = F.normalize(torch.randn(3, 1, D, dtype=torch.float64), dim=-1)
    y = torch.tensor([1, 1, 2])
    got = float(m.memory_loss(X, y))
    def loop(first, second):
        A = [X[t, v] for v in range(1) for t in range(3)]; L = [int(y[t]) for v in range(1) for t in range(3)]
        rows, lab = [], []
        for c in range(1, K):
            rows += list(first.queue[c]) + list(second.queue[c]); lab += [c] * 2 * M
        rows += [torch.zeros(D, dtype=torch.float64)] * 2 * M; lab += [0] * 2 * M
        total = 0.0
        for i, a in enumerate(A):
            s = [float(a @ r) / 0.1 for r in rows]; mx = max(s); s = [v - mx for v in s]
            neg = sum(math.exp(s[k]) for k in range(len(rows)) if lab[k] != L[i])
            pos = [j for j in range(len(rows)) if lab[j] == L[i] and j != i]
            total += -(0.1 / 0.07) * sum(s[j] - math.log(math.exp(s[j]) + neg) for j in pos) / len(pos)
        return total / len(A)
    total, wrong = loop(m.segment_queue, m.pixel_queue), loop(m.pixel_queue, m.segment_queue)
    assert abs(got - total) < 1e-9 and abs(wrong - total) > 1e-6



@pytest.mark.parametrize('memory', [False, True])
def test_the_loss_runs_in_fp32_under_cpu_autocast(memory):
    "The projection may run in bf16, the similarities and the loss may not (the authors compute them in fp32)."
    torch.manual_seed(0)
    pc = PixelContrast(16, 5, proj_dim=8, warmup_iters=0, loss_weight=1.0, max_views=3, memory=memory,
                       pixel_memory_size=16, segment_memory_size=4).train()
    feats, logits, tgt = {'layer4': torch.randn(2, 16, 12, 12)}, torch.randn(2, 5, 12, 12), torch.randint(0, 5, (2, 96, 96))
    seen = []
    orig = torch.Tensor.__matmul__
    def spy(a, b):
        r = orig(a, b); seen.append(r.dtype); return r
    with torch.autocast('cpu', dtype=torch.bfloat16):
        for _ in range(2):                                              # the second step reads a filled memory
            torch.Tensor.__matmul__ = spy
            try: out = pc(feats, logits, tgt)
            finally: torch.Tensor.__matmul__ = orig
    assert seen and all(d == torch.float32 for d in seen), seen       # every A·Cᵀ of the loss in fp32
    assert out['contrast'].dtype == torch.float32 and pc.stats['raw'].dtype == torch.float32
    if memory: assert pc.pixel_queue.queue.dtype == torch.float32


def _two_paths(params, steps=2, size=48):
    "The loss of the last of `steps` training forwards, with the slot layout (sync_free) and without, from the same draws."
    out = {}
    for sf in (False, True):
        torch.manual_seed(0)
        pc = PixelContrast(16, 6, proj_dim=8, warmup_iters=0, loss_weight=1.0, max_samples=96, max_views=12,
                           sync_free=sf, **params).train()
        g = torch.Generator().manual_seed(1)
        feats = [torch.randn(2, 16, size // 4, size // 4, generator=g) for _ in range(steps)]
        targets = [torch.randint(0, 6, (2, size, size), generator=g) for _ in range(steps)]
        for f, t in zip(feats, targets):
            torch.manual_seed(2)                                              # the sampler's randperm: the same draw
            loss = pc({'layer4': f}, f[:, :6], t)['contrast']
        out[sf] = (loss, pc.stats)
    return out


@pytest.mark.parametrize('params', [{}, {'memory': True, 'mining': 'none', 'pixel_memory_size': 40, 'segment_memory_size': 8},
                                    {'memory': True, 'mining': 'hardest', 'num_positives': 20, 'num_negatives': 50,
                                     'pixel_memory_size': 40, 'segment_memory_size': 8},
                                    {'memory': True, 'authors_code': True, 'pixel_memory_size': 40, 'segment_memory_size': 40}])
def test_sync_free_path_gives_the_same_loss(params):
    "The slot layout (fixed shapes) computes the loss and the diagnostics of the direct path, in-batch and with memories."
    o = _two_paths(params)
    (a, sa), (b, sb) = o[False], o[True]
    assert float(a) > 0 and torch.allclose(a, b, rtol=1e-5, atol=1e-6), (float(a), float(b))
    for k in sa: assert torch.allclose(sa[k], sb[k], rtol=1e-5, atol=1e-5), (k, float(sa[k]), float(sb[k]))


@pytest.mark.parametrize('memory', [False, True])
def test_sync_free_sampler_and_loss_make_no_host_sync(memory):
    "With sync_free the sampler and the loss read nothing back (the memory update, `enqueue`, is not part of them)."
    from ctxseg.bench import HostSyncs
    torch.manual_seed(0)
    pc = PixelContrast(16, 6, proj_dim=8, warmup_iters=0, max_samples=96, max_views=12, sync_free=True,
                       memory=memory, pixel_memory_size=40, segment_memory_size=8).train()
    f, t = torch.randn(2, 16, 12, 12), torch.randint(0, 6, (2, 48, 48))
    pc({'layer4': f}, f[:, :6], t)                                           # the first step reads the step counter
    pc.enqueue = lambda *a: None
    with HostSyncs() as hs: out = pc({'layer4': f}, f[:, :6], t)
    assert float(out['contrast']) > 0 and hs.calls == [], hs.calls
