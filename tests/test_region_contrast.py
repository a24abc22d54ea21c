"""RegionContrast (issue 14): the public functions of ctxseg.methods.region_contrast against loop implementations
written here from the spec, in float64 (the centres, the paper's InfoNCE, the released code's channel-wise loss with
its loop over class pairs); the memory (wrap-around, detached entries, nothing written in eval mode); two gloo ranks
holding identical queues filled from both; exact resume; inference equal to the baseline's, FLOP for FLOP; class
counts of 150 and 171; and every baseline head. The training notebook runs in its smoke profile with the others
(tests/test_notebooks.py).

Time: under a minute (short smoke trainings, one 2-process torchrun)."""
from __future__ import annotations
import json, math
from pathlib import Path
import pytest
import torch
import torch.nn.functional as F
from ctxseg import presets as P
from ctxseg.models.segmentor import build_model
from ctxseg.methods.region_contrast import (region_centres, authors_region_loss, paper_region_loss, enqueue_regions,
                                            RegionContrast)

HERE = Path(__file__).parent
ROOT = HERE.parent


# ------------------------------------------------------------------------------- loop references (from the spec)
def loop_centres(f, y, ignore, per_image):
    B = f.shape[0]
    out, cls = [], []
    for group in ([[b] for b in range(B)] if per_image else [list(range(B))]):
        present = sorted({int(v) for b in group for v in torch.unique(y[b]) if int(v) != ignore})
        for k in present:
            acc, n = torch.zeros(f.shape[1], dtype=f.dtype), 0
            for b in group:
                for i in range(y.shape[1]):
                    for j in range(y.shape[2]):
                        if int(y[b, i, j]) == k: acc += f[b, :, i, j]; n += 1
            m = acc / n; out.append(m / m.norm()); cls.append(k)
    return torch.stack(out), torch.tensor(cls)

def loop_authors_loss(q, k, queues, tau):
    "The released _compute_contrast_loss: a loop over the present classes and, inside, over all the other classes."
    total = 0.0
    K = queues.shape[0]
    for i in range(q.shape[0]):
        cls = int(k[i])
        l_pos = q[i].unsqueeze(1) * queues[cls]
        l_neg = 0
        for o in range(K):
            if o != cls: l_neg = l_neg + q[i].unsqueeze(1) * queues[o]
        logits = torch.cat([l_pos, l_neg], 1) / tau
        total = total + F.cross_entropy(logits, torch.zeros(logits.shape[0], dtype=torch.long))
    return total

def loop_paper_loss(q, k, queues, valid, tau):
    K, D, L = queues.shape
    losses = []
    for i in range(q.shape[0]):
        pos = [float(q[i] @ queues[c, :, j]) / tau for c in range(K) for j in range(L) if valid[c, j] and c == int(k[i])]
        neg = [float(q[i] @ queues[c, :, j]) / tau for c in range(K) for j in range(L) if valid[c, j] and c != int(k[i])]
        if not pos: continue
        den = lambda p: math.log(math.exp(p) + sum(math.exp(n) for n in neg))
        losses.append(-sum(p - den(p) for p in pos) / len(pos))
    return sum(losses) / len(losses)


@pytest.mark.parametrize('per_image', [False, True])
def test_region_centres_match_the_loop(per_image):
    g = torch.Generator().manual_seed(3)
    f = torch.randn(3, 6, 5, 7, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (3, 5, 7), generator=g)
    y[0, :2] = 255; y[2] = torch.where(y[2] == 3, 1, y[2]); y[1, 4, 6] = 9          # ignore, a class absent in one image, a one-pixel class
    c, k = region_centres(f, y, 255, per_image)
    c0, k0 = loop_centres(f, y, 255, per_image)
    assert torch.equal(k, k0) and torch.allclose(c, c0, atol=1e-12)
    assert torch.allclose(c.norm(dim=1), torch.ones(len(k), dtype=torch.float64))


def test_the_released_loss_matches_its_loop_on_19_classes():
    g = torch.Generator().manual_seed(4)
    queues = F.normalize(torch.randn(19, 8, 11, generator=g, dtype=torch.float64), dim=1)
    q = F.normalize(torch.randn(5, 8, generator=g, dtype=torch.float64), dim=1).requires_grad_()
    k = torch.tensor([0, 3, 7, 18, 11])
    ours, ref = authors_region_loss(q, k, queues, 0.2), loop_authors_loss(q, k, queues, 0.2)
    assert torch.allclose(ours, ref, atol=1e-10)
    g1, = torch.autograd.grad(ours, q); g2, = torch.autograd.grad(loop_authors_loss(q, k, queues, 0.2), q)
    assert torch.allclose(g1, g2, atol=1e-10)


def test_the_paper_loss_matches_its_loop():
    g = torch.Generator().manual_seed(5)
    queues = F.normalize(torch.randn(4, 6, 5, generator=g, dtype=torch.float64), dim=1)
    valid = torch.rand(4, 5, generator=g) > 0.4; valid[2] = False                  # class 2 never written
    q = F.normalize(torch.randn(6, 6, generator=g, dtype=torch.float64), dim=1)
    k = torch.tensor([0, 1, 2, 3, 3, 1])
    assert abs(float(paper_region_loss(q, k, queues, valid, 0.2)) - loop_paper_loss(q, k, queues, valid, 0.2)) < 1e-10


def test_enqueue_wraps_around_and_keeps_the_last_entries():
    Q, P = torch.zeros(3, 2, 4), torch.tensor([0, 3, 1])
    c = torch.arange(14.).view(7, 2)
    k = torch.tensor([1, 1, 0, 1, 2, 1, 1])
    enqueue_regions(Q, P, c, k)
    # class 1 gets 5 entries into 4 slots from pointer 3: slots 3,0,1,2,3 -> the first is overwritten by the fifth
    assert torch.equal(P, torch.tensor([1, (3 + 5) % 4, 2]))
    expect1 = torch.zeros(4, 2); order = [0, 1, 3, 5, 6]
    for slot, idx in zip([3, 0, 1, 2, 3], order): expect1[slot] = c[idx]
    assert torch.equal(Q[1].T, expect1)
    assert torch.equal(Q[0][:, 0], c[2]) and torch.equal(Q[2][:, 1], c[4])


def test_the_memory_is_detached_and_untouched_in_eval():
    torch.manual_seed(0)
    m = RegionContrast(8, 4, queue_len=6, loss_weight=1.0).train()
    for _ in range(4):
        f = torch.randn(2, 8, 5, 5, requires_grad=True)
        out = m({'rep': f}, torch.randn(2, 4, 5, 5), torch.randint(0, 4, (2, 20, 20)))
        out['region_contrast'].backward()
        assert not m.queues.requires_grad and m.queues.grad_fn is None             # no graph carried over
    assert int(m.filled.min()) > 0
    before = {k: v.clone() for k, v in m.state_dict().items() if k != 'counter.steps'}
    m.eval()
    with torch.no_grad(): m({'rep': torch.randn(2, 8, 5, 5)}, torch.randn(2, 4, 5, 5), torch.randint(0, 4, (2, 20, 20)))
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items() if k in before)


def test_two_ranks_hold_identical_queues_filled_from_both(tmp_path, torchrun):
    r = torchrun(HERE / 'ddp_region_contrast_worker.py', tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / 'regcon_ddp.json').read_text())
    assert res['world'] == 2 and res['queues_equal'] and all(res['found_from_rank'])
    assert res['written'] == sum(res['local_counts'])
    assert res['train_buffers_equal'] and res['train_params_equal']
    # the released path on 2 ranks: every term (CE, aux, contrast) / 2, as train_contrast.py divides the summed loss
    assert res['divide_flag'] and set(res['loss_ratios']) >= {'seg', 'aux', 'region_contrast'}
    assert all(abs(r - 2.0) < 1e-6 for r in res['loss_ratios'].values()), res['loss_ratios']
    # enqueue_ranks='first': both ranks hold rank 0's centres only (what DDP's buffer broadcast leaves)
    assert res['first_equal'] and res['first_found'] == [True, False] and res['first_written'] == res['local_counts'][0]


def _smoke(extra=()):
    return P.get('smoke_regcon', ['data.num_val=4', *extra])


def test_resume_restores_the_queues_exactly(tmp_path, resume_pair):
    base = _smoke(['train.iters=6', 'train.deterministic=true', 'train.ckpt_interval=100'])
    a, b, mid = resume_pair(base, tmp_path)
    assert int(mid['method.filled'].sum()) > 0
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert int(a['method.counter.steps']) == 6


@pytest.mark.parametrize('preset', ['smoke_regcon', 'smoke_regcon_authors'])
def test_inference_is_the_baseline_flop_for_flop(preset, baseline_inference):
    flops, base_flops, logits, base_logits = baseline_inference(preset)
    assert flops == base_flops > 0
    assert torch.equal(logits, base_logits)


@pytest.mark.parametrize('K', [150, 171])
@pytest.mark.parametrize('authors', [False, True])
def test_any_class_count(K, authors):
    m = RegionContrast(16, K, queue_len=4, authors_code=authors, loss_weight=1.0).train()
    y = torch.randint(0, K, (2, 12, 12)); y[0, 0, 0] = K - 1
    logits = torch.randn(2, K, 6, 6); logits[:, K - 1] += 5                        # the last class is predicted too
    for _ in range(2):
        out = m({'rep': torch.randn(2, 16, 6, 6, requires_grad=True)}, logits, y)
    v = out['region_contrast'].detach()
    assert torch.isfinite(v) and float(v) > 0
    assert int(m.filled[K - 1]) >= 1


@pytest.mark.parametrize('head', ['fcn', 'psp', 'aspp', 'ocr'])
def test_plugs_into_every_baseline_head(head):
    torch.manual_seed(0)
    cfg = P.get('smoke_regcon', [f'model.head={head}'])
    net = build_model(cfg, num_classes=5).train()
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 5, (2, 32, 32))
    net(x, y); out = net(x, y)
    assert float(out.losses['region_contrast']) > 0
    out.loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.backbone.parameters())

