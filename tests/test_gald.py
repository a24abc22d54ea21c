"""GALD (issue 6): `local_attention` against a brute-force double loop, the GA × LD × arrangement grid through
`build_model`, LDv1's mask sizes and the authors' code form, and the presets. About 20 s on 2 CPU cores."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from ctxseg import configs as C
from ctxseg import presets as P
from ctxseg.presets import gald as gald_presets
from ctxseg.methods import gald
from ctxseg.methods.gald import (local_attention, local_attention_unfold, local_attention_weights, local_offsets,
                                 LDv1, LDv2, GA_MODULES, LD_MODULES, ARRANGEMENTS)
from ctxseg.models.segmentor import build_model


def naive_local_attention(q, k, v, kernel_size, dilation, scale=1.0):
    "Loop over every position and every offset; zero key and value outside the map (they still enter the softmax)."
    B, _, H, W = q.shape
    out = torch.zeros(B, v.shape[1], H, W, dtype=q.dtype)
    c = kernel_size // 2
    offs = [((i - c) * dilation, (j - c) * dilation) for i in range(kernel_size) for j in range(kernel_size)]
    for b in range(B):
        for y in range(H):
            for x in range(W):
                logits, vals = [], []
                for dy, dx in offs:
                    yy, xx = y + dy, x + dx
                    inside = 0 <= yy < H and 0 <= xx < W
                    kv = k[b, :, yy, xx] if inside else torch.zeros_like(k[b, :, 0, 0])
                    vv = v[b, :, yy, xx] if inside else torch.zeros_like(v[b, :, 0, 0])
                    logits.append(scale * (q[b, :, y, x] * kv).sum()); vals.append(vv)
                a = torch.softmax(torch.stack(logits), 0)
                out[b, :, y, x] = (a[:, None] * torch.stack(vals)).sum(0)
    return out


CASES = [  # H, W, kernel_size, dilation, scale
    (5, 6, 5, 3, 1.0),       # the paper's default window: mostly over the border on a small map
    (7, 4, 3, 1, 0.7),
    (3, 4, 5, 9, 1.0),       # dilation larger than the map: every neighbour but the centre is padding
    (6, 6, 1, 2, 1.0),       # k = 1
    (9, 11, 7, 2, 0.3),
]


@pytest.mark.parametrize('H,W,k,r,s', CASES)
def test_local_attention_matches_double_loop(H, W, k, r, s):
    torch.manual_seed(H * 100 + W)
    q, key, v = (torch.randn(2, c, H, W, dtype=torch.float64, requires_grad=True) for c in (3, 3, 4))
    ref = naive_local_attention(q, key, v, k, r, s)
    out = local_attention(q, key, v, kernel_size=k, dilation=r, scale=s)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(local_attention_unfold(q, key, v, k, r, s), ref, rtol=1e-10, atol=1e-10)
    # gradients of a non-linear function of the output against the loop's autograd
    w = torch.randn_like(ref)
    g_ref = torch.autograd.grad((ref * w).sin().sum(), (q, key, v))
    g = torch.autograd.grad((out * w).sin().sum(), (q, key, v))
    for a, b in zip(g, g_ref): torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize('H,W,k,r,s', [(4, 5, 3, 2, 0.9), (3, 3, 5, 4, 1.0), (5, 4, 5, 1, 1.3)])
def test_local_attention_gradcheck(H, W, k, r, s):
    torch.manual_seed(0)
    q, key, v = (torch.randn(1, c, H, W, dtype=torch.float64, requires_grad=True) for c in (2, 2, 3))
    assert torch.autograd.gradcheck(lambda a, b, c: local_attention(a, b, c, k, r, s), (q, key, v))


def test_local_attention_special_cases_and_errors():
    torch.manual_seed(0)
    v = torch.randn(2, 3, 6, 7)
    # all logits equal -> the mean over the k² window, zeros beyond the border included (dilated box filter)
    box = F.conv2d(v, torch.ones(3, 1, 5, 5) / 25, padding=6, dilation=3, groups=3)
    torch.testing.assert_close(local_attention(torch.randn(2, 4, 6, 7), torch.zeros(2, 4, 6, 7), v), box)
    a = local_attention_weights(torch.randn(2, 4, 6, 7), torch.randn(2, 4, 6, 7), 5, 3)
    assert a.shape == (2, 25, 6, 7) and torch.allclose(a.sum(1), torch.ones(2, 6, 7))
    assert local_offsets(3, 2) == [(-2, -2), (-2, 0), (-2, 2), (0, -2), (0, 0), (0, 2), (2, -2), (2, 0), (2, 2)]
    with pytest.raises(ValueError, match='odd'): local_attention(v, v, v, kernel_size=2)
    with pytest.raises(ValueError, match='dilation'): local_attention(v, v, v, dilation=0)
    with pytest.raises(ValueError, match='value'): local_attention(v, v, v[:, :, :5])
    # mixed precision inputs are promoted, not silently truncated
    assert local_attention(v.double(), v, v).dtype == torch.float64


GRID = [(ga, ld, arr, lay) for lay in gald.LAYOUTS for ga in GA_MODULES for ld in LD_MODULES
        for arr in (ARRANGEMENTS if ld != 'none' else ARRANGEMENTS[:1])]


@pytest.mark.parametrize('ga,ld,arr,layout', GRID)
def test_every_ga_ld_arrangement_through_build_model(ga, ld, arr, layout):
    torch.manual_seed(0)
    kw = (f'{{"ga": "{ga}", "ld": "{ld}", "arrangement": "{arr}", "layout": "{layout}", "kernel_size": 3, "dilation": 2, '
          f'"dilations": [1, 2]}}')
    cfg = P.get('smoke', ['model.head=gald', f'model.head_kwargs={kw}'])
    model = build_model(cfg, num_classes=5).train()
    x, y = torch.randn(2, 3, 40, 48), torch.randint(0, 5, (2, 40, 48))
    out = model(x, y)
    assert out.logits.shape == (2, 5, 5, 6)                  # output stride 8: the head keeps the resolution
    assert out.features['rep'].shape == (2, 16, 5, 6)
    assert set(out.losses) == {'seg', 'aux'} and torch.isfinite(out.loss)
    out.loss.backward()
    head_params = list(model.head.named_parameters())
    missing = [n for n, p in head_params if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing, f'no gradient for {missing}'
    model.eval()
    with torch.no_grad(): assert model(x).logits.shape == (2, 5, 5, 6)


def test_gald_plugs_into_other_backbones():
    for bb, extra in [('hrnet_w18', ['model.aux=false', 'model.base_width=64']), ('resnet50', ['model.base_width=8', 'model.stem=deep',
                                                                         'model.dilation=gald'])]:
        cfg = P.get('smoke', ['model.head=gald', f'model.backbone={bb}', *extra,
                              'model.head_kwargs={"ga": "cgnl", "ld": "v2", "dilations": [1, 2]}'])
        model = build_model(cfg, num_classes=3).train()
        out = model(torch.randn(2, 3, 32, 32), torch.randint(0, 3, (2, 32, 32)))
        out.loss.backward()
        assert torch.isfinite(out.loss)


@pytest.mark.parametrize('size,form,path', [
    (97, 'paper', [49, 25, 13]), (96, 'paper', [48, 24, 12]), (12, 'paper', [6, 3, 2]), (13, 'paper', [7, 4, 2]),
    (97, 'code', [48, 23, 11]), (96, 'code', [47, 23, 11]), (15, 'code', [7, 3, 1]), (16, 'code', [7, 3, 1])])
def test_ldv1_mask_sizes(size, form, path):
    ld = LDv1(4, form=form).eval()
    x, sizes = torch.randn(1, 4, size, size + 1), []
    for m in ld.down:
        x = m(x)
        if isinstance(m, torch.nn.Conv2d): sizes.append(x.shape[-2])
    assert sizes == path
    mask = ld.mask(torch.randn(2, 4, size, size + 1))
    assert mask.shape == (2, 4, size, size + 1) and ((mask > 0) & (mask < 1)).all()


def test_ldv1_code_form_and_errors():
    torch.manual_seed(0)
    xg = torch.randn(2, 6, 23, 18)
    for form, factor in (('paper', 1), ('code', 2)):
        ld = LDv1(6, form=form).eval()
        out, m = ld(xg, return_mask=True)
        torch.testing.assert_close(out, xg * (factor + m))     # Eq. 2 / the code's X_g ⊙ (2 + M)
    assert (LDv1(6, form='code').eval().mask(xg) >= 0.5).all()  # ReLU before the sigmoid in the code
    with pytest.raises(ValueError, match='at least 15'): LDv1(6, form='code')(torch.randn(1, 6, 14, 30))
    with pytest.raises(ValueError, match="'paper' or 'code'"): LDv1(6, form='bmvc')
    # the code form also runs inside the head, on a map large enough for it
    head = gald.build_head(32, 4, channels=16, ga='cgnl', ld='v1', ldv1_form='code').eval()
    assert head.ld.form == 'code' and head(torch.randn(1, 32, 17, 17))['logits'].shape == (1, 4, 17, 17)
    with pytest.raises(ValueError, match='arrangement'): gald.build_head(32, 4, arrangement='gald')
    with pytest.raises(ValueError, match='local distribution'): gald.build_head(32, 4, ld='v3')


def test_ldv2_k1_is_a_value_projection():
    ld = LDv2(10, 4, kernel_size=1, dilation=1)
    xg, xl = torch.randn(2, 6, 5, 7), torch.randn(2, 4, 5, 7)
    torch.testing.assert_close(ld(xg, xl), ld.g(torch.cat([xg, xl], 1)))


def test_presets_resolve():
    names = P.names()
    gald_names = [n for n in names if n in gald_presets.PRESETS]   # (configs also holds the paper's baseline rows, e.g. gald_cityscapes_aspp_r50_baseline)
    for n in ('synthetic_gald_nl', 'synthetic_gald_cgnl', 'synthetic_gald_aspp_ldv1', 'synthetic_gald_aspp_ldv2',
              'synthetic_gald_aspp_ldv2_ldga', 'synthetic_gald_aspp_ldv2_parallel', 'cityscapes_gald_aspp_ldv2_r101',
              'cityscapes_gald_aspp_ldv2_r50'):
        assert n in gald_names, n
    for n in gald_names:
        cfg = P.get(n)
        assert cfg.name == n and cfg.model.head == 'gald'
        gald.build_head(64, 6, channels=cfg.model.head_channels, **cfg.model.head_kwargs)   # the kwargs are accepted
    # the cpu rows differ from the committed ASPP baseline only in the head
    base = C.to_dict(P.get('synthetic_aspp'))
    assert {'smoke_gald_ldv1', 'smoke_gald_ldv2'} <= set(gald_names)
    for n in (n for n in gald_names if n.startswith('synthetic_')):
        d = C.to_dict(P.get(n))
        for sec in ('data', 'eval', 'method'): assert d[sec] == base[sec], (n, sec)
        assert {k: v for k, v in d['train'].items() if k != 'grad_norms'} == {k: v for k, v in base['train'].items() if k != 'grad_norms'}, n
        assert d['train']['grad_norms'] == gald_presets.watched_parts(d['model']['head_kwargs']), n   # only logs the head's gradients
        assert {k for k in base['model'] if base['model'][k] != d['model'][k]} == {'head', 'head_kwargs'}, n
    r101 = P.get('cityscapes_gald_aspp_ldv2_r101')
    assert (r101.model.stem, r101.model.dilation, r101.model.output_stride) == ('deep', 'gald', 8)
    assert (r101.data.crop_size, r101.data.batch_size * r101.train.gpus, r101.train.lr, r101.train.iters) == ([832, 832], 8, 0.01, 50000)
    assert (r101.train.loss, r101.model.aux_weight) == ('ohem_batch', 0.4)
    assert r101.model.head_kwargs['kernel_size'] == 5 and r101.model.head_kwargs['dilation'] == 6   # Table II(b)'s 80.8 row
    assert P.get('cityscapes_gald_aspp_ldv2_r50').model.dilation == 'gald_nomg'                      # Table III adds MG to R-101
    code = P.get('cityscapes_gald_cgnl_ldv1_r101')                                                   # the released network
    assert (code.data.crop_size, code.train.iters, code.model.head_kwargs['ga'], code.model.head_kwargs['ld']) == ([769, 769], 50575, 'cgnl', 'v1')
