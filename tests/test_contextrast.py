"""Contextrast (issue 15): the public functions of ctxseg.methods.contextrast against scipy and against loop
implementations written here from the paper's text, in float64: the error maps and their distance transform
(squares, rings, regions touching the border, ignore pixels, random maps), BANE's counts and order, the anchors, the
whole loss with deterministic sampling; zero losses with a gradient path on degenerate crops; anchors over two gloo
ranks; exact resume; inference equal to the baseline's, FLOP for FLOP; every baseline head and an HRNet trunk. The
training notebook runs in its smoke profile with the others (tests/test_notebooks.py).

Time: under a minute (short smoke trainings, one 2-process torchrun)."""
from __future__ import annotations
import json, math
from pathlib import Path
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage
from ctxseg import presets as P
from ctxseg.models.segmentor import build_model
from ctxseg.methods.contextrast import (error_maps, edt, error_distance, bane_select, representative_anchors, fuse_anchors,
                                        Contextrast, tsc_metrics)

HERE = Path(__file__).parent


# ------------------------------------------------------------------------------- references written from the text
def scipy_error_distance(pred, label, K, ignore=255):
    B, H, W = pred.shape
    out = np.zeros((B, K, H, W))
    for b in range(B):
        for n in range(K):
            e = (pred[b] == n) & (label[b] != n) & (label[b] != ignore)
            if e.any() and (~e).any(): out[b, n] = ndimage.distance_transform_edt(e.numpy())
            elif e.any(): out[b, n] = np.inf
    return torch.from_numpy(out)

def loop_bane(distance, ratio):
    d = distance.numpy(); out = np.zeros(d.shape, bool)
    B, K, H, W = d.shape
    for b in range(B):
        for n in range(K):
            flat = d[b, n].ravel(); err = np.nonzero(flat > 0)[0]
            k = math.ceil(ratio * len(err) - 1e-9)
            order = err[np.lexsort((err, flat[err]))]                           # by distance, then by index
            keep = np.zeros(H * W, bool); keep[order[:k]] = True
            out[b, n] = keep.reshape(H, W)
    return torch.from_numpy(out)


@pytest.mark.parametrize('seed', range(4))
def test_error_distance_equals_scipy_on_random_maps(seed):
    g = torch.Generator().manual_seed(seed)
    H, W = 17 + seed, 23 - seed
    pred = torch.randint(0, 4, (2, H, W), generator=g)
    pred = F.max_pool2d(pred[:, None].float(), 3, 1, 1)[:, 0].long()           # blobs, not salt and pepper
    label = torch.randint(0, 4, (2, H, W), generator=g); label[0, :3] = 255
    ours, ref = error_distance(pred, label, 5), scipy_error_distance(pred, label, 5)
    assert ours.shape == (2, 5, H, W) and ours.dtype == torch.float32
    fin = torch.isfinite(ref)
    assert torch.equal(torch.isfinite(ours), fin)
    assert torch.allclose(ours[fin].double(), ref[fin], atol=1e-5)


def test_error_distance_on_hand_made_maps():
    H = W = 16
    label = torch.zeros(1, H, W, dtype=torch.long)
    pred = torch.zeros(1, H, W, dtype=torch.long)
    pred[0, 2:9, 2:9] = 1                                                       # a 7×7 square predicted 1 on class 0
    pred[0, 10:16, 10:16] = 2; pred[0, 12:14, 12:14] = 0                        # a ring touching the border
    label[0, 5, 5] = 255                                                        # an ignore pixel inside the square
    d = error_distance(pred, label, 3)
    assert d[0, 1, 5, 5] == 0 and d[0, 1, 5, 4] == 1 and d[0, 1, 4, 5] == 1    # the ignored pixel is an edge
    assert d[0, 1, 2, 2] == 1 and d[0, 1, 3, 3] == 2
    assert abs(float(d[0, 2, 15, 15]) - math.sqrt(8)) < 1e-6                    # to the hole's corner: the border is no edge
    assert torch.allclose(d.double(), scipy_error_distance(pred, label, 3))
    assert d[0, 0].abs().sum() == 0                                             # nothing is wrongly predicted as 0


@pytest.mark.parametrize('ratio', [0.0, 0.1, 0.3, 0.5, 1.0])
def test_bane_select_counts_and_order(ratio):
    g = torch.Generator().manual_seed(7)
    pred = F.max_pool2d(torch.randint(0, 3, (2, 1, 20, 20), generator=g).float(), 3, 1, 1)[:, 0].long()
    label = torch.randint(0, 3, (2, 20, 20), generator=g)
    d = error_distance(pred, label, 3)
    assert torch.equal(bane_select(d, ratio), loop_bane(d, ratio))


def test_anchors_against_the_loop():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 4, 5, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (3, 5, 6), generator=g); y[1] = 255
    A, c = representative_anchors(z, y, 4)
    for n in range(4):
        v = [z[b, :, i, j] for b in range(3) for i in range(5) for j in range(6) if int(y[b, i, j]) == n]
        assert int(c[n]) == len(v)
        if v: assert torch.allclose(A[n], torch.stack(v).mean(0), atol=1e-12)


def loop_loss(m, feats, logits, targets):
    "Eqs. 1-5 with every positive and only BANE's negatives: a loop over layers and classes, from the paper's text."
    p, K = m.p, m.num_classes
    embs = [m.proj[f](feats[f]).double() for f in p.features]
    labs = [F.interpolate(targets[:, None].float(), size=z.shape[-2:], mode='nearest')[:, 0].long() for z in embs]
    anchors, present = [], []
    for z, y in zip(embs, labs):
        A = torch.zeros(K, z.shape[1], dtype=z.dtype); pr = torch.zeros(K, dtype=torch.bool)
        for n in range(K):
            mask = y == n
            if mask.any(): A[n] = z.permute(0, 2, 3, 1)[mask].mean(0); pr[n] = True
        anchors.append(A); present.append(pr)
    fused = [torch.where(present[-1][:, None], p.w_low * A + (1 - p.w_low) * anchors[-1], A) for A in anchors[:-1]] + [anchors[-1]]
    total = 0.0
    for z, y, A, pr, lam in zip(embs, labs, fused, present, p.layer_weights):
        pred = F.interpolate(logits, size=z.shape[-2:], mode='bilinear', align_corners=False).argmax(1)
        d = scipy_error_distance(pred, y, K)
        sel = loop_bane(d.float(), p.ratio)
        zf = z.permute(0, 2, 3, 1)
        terms = []
        for n in range(K):
            if not pr[n]: continue
            a = F.normalize(A[n], dim=0)
            sp = zf[y == n] @ a / p.temperature
            sn = zf[sel[:, n]] @ a / p.temperature
            terms.append(torch.stack([-(s - torch.logsumexp(torch.cat([s[None], sn]), 0)) for s in sp]).mean())
        total = total + lam * torch.stack(terms).mean()
    return total


def test_the_loss_equals_its_loop_with_deterministic_sampling():
    torch.manual_seed(0)
    ch = {'layer1': 6, 'layer2': 8}
    m = Contextrast(ch, 4, features=['layer1', 'layer2'], layer_weights=[0.4, 1.0], proj_dim=5, num_positives=10**6,
                    num_negatives=0, loss_weight=1.0, sampling='bane', ratio=0.5).double().eval()
    g = torch.Generator().manual_seed(3)
    feats = {'layer1': torch.randn(2, 6, 12, 12, generator=g, dtype=torch.float64),
             'layer2': torch.randn(2, 8, 6, 6, generator=g, dtype=torch.float64)}
    logits = torch.randn(2, 4, 6, 6, generator=g, dtype=torch.float64)
    targets = F.interpolate(torch.randint(0, 4, (2, 1, 6, 6), generator=g).float(), size=(24, 24), mode='nearest')[:, 0].long()
    ours = m(feats, logits, targets)['contextrast']
    assert abs(float(ours.detach()) - float(loop_loss(m, feats, logits, targets).detach())) < 1e-6


def test_degenerate_crops_give_a_zero_loss_with_a_gradient_path():
    m = Contextrast({'layer1': 4, 'layer2': 4}, 3, features=['layer1', 'layer2'], layer_weights=[0.5, 1.0], proj_dim=8)
    lg = torch.randn(2, 3, 4, 4)
    for sampling in ('random', 'semi_hard', 'error_random', 'bane'):
        m.p.sampling = sampling                                                  # fresh leaves: a gradient of this mode only
        f = {'layer1': torch.randn(2, 4, 8, 8, requires_grad=True), 'layer2': torch.randn(2, 4, 4, 4, requires_grad=True)}
        loss = m(f, lg, torch.full((2, 16, 16), 255))['contextrast']            # all ignore
        assert float(loss.detach()) == 0.0
        loss.backward()
        assert f['layer1'].grad is not None and f['layer2'].grad is not None
        perfect = torch.zeros(2, 16, 16, dtype=torch.long); perfect[:, :8] = 1  # a prediction with no error pixel
        lg2 = torch.zeros(2, 3, 4, 4); lg2[:, 0] = 5; lg2[:, 1, :2] = 10
        assert torch.isfinite(m(f, lg2, perfect)['contextrast'])


def test_anchors_over_two_ranks_are_those_of_the_whole_batch(tmp_path, torchrun):
    r = torchrun(HERE / 'ddp_contextrast_worker.py', tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / 'contextrast_ddp.json').read_text())
    assert res['world'] == 2 and all(x['equal'] and x['counts'] and x['grad'] for x in res['ranks'])


def test_resume_is_exact(tmp_path, resume_pair):
    base = P.get('smoke_contextrast', ['data.num_val=4', 'train.iters=6', 'train.deterministic=true', 'train.ckpt_interval=100'])
    a, b, _ = resume_pair(base, tmp_path)
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert int(a['method.counter.steps']) == 6


@pytest.mark.parametrize('preset', ['smoke_contextrast', 'smoke_contextrast_random'])
def test_inference_is_the_baseline_flop_for_flop(preset, baseline_inference):
    flops, base_flops, logits, base_logits = baseline_inference(preset)
    assert flops == base_flops > 0
    assert torch.equal(logits, base_logits)


@pytest.mark.parametrize('head,extra', [('fcn', []), ('psp', []), ('aspp', []), ('ocr', []),
                                        ('fcn', ['model.backbone=hrnet_w18', 'model.aux=false', 'model.base_width=64']),
                                        ('ocr', ['model.backbone=hrnet_w18', 'model.aux=false', 'model.base_width=64'])])
def test_plugs_into_every_baseline_head_and_hrnet(head, extra):
    torch.manual_seed(0)
    cfg = P.get('smoke_contextrast', [f'model.head={head}', *extra])
    net = build_model(cfg, num_classes=5).train()
    assert len(net.method.proj) == 4
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 5, (2, 32, 32))
    out = net(x, y)
    assert float(out.losses['contextrast'].detach()) > 0
    out.loss.backward()
    assert all(p.grad is not None for p in net.method.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in net.backbone.parameters())


def test_the_loss_runs_in_float32_under_autocast():
    m = Contextrast({'layer1': 4, 'layer2': 4}, 3, features=['layer1', 'layer2'], layer_weights=[0.5, 1.0], proj_dim=8)
    f = {'layer1': torch.randn(2, 4, 8, 8), 'layer2': torch.randn(2, 4, 4, 4)}
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = m(f, torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 16, 16)))['contextrast']
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_gpu_presets_are_the_papers_schedules():
    for name, (bs, iters, crop) in {'contextrast_cityscapes_fcn_hr48': (8, 40000, [512, 1024]),
                                    'contextrast_camvid_fcn_hr48': (16, 6000, [360, 480]),
                                    'contextrast_ade20k_fcn_hr48': (12, 80000, [512, 512]),
                                    'contextrast_coco_stuff10k_fcn_hr48': (16, 60000, [512, 512]),
                                    'contextrast_pascal_context_fcn_hr48': (16, 60000, [512, 512])}.items():
        cfg = P.get(name)
        assert cfg.method.name == 'contextrast' and cfg.train.iters == iters, name
        assert cfg.data.batch_size * cfg.train.gpus == bs, name
        if crop: assert list(cfg.data.crop_size) == crop, name
        if 'cityscapes' in name: assert list(cfg.eval.scales) == [1.0] and not cfg.eval.flip
        else: assert list(cfg.eval.scales) == [0.75, 1.0, 1.25, 1.5, 1.75, 2.0] and cfg.eval.flip
    for n in ('aspp_r101', 'ocr_hr48'): assert P.get(f'contextrast_cityscapes_{n}').method.name == 'contextrast'
