"The two-line API of the README and the landing page, at full size."
import torch
import ctxseg
from ctxseg import presets as P
from ctxseg.models.segmentor import build_model as build_from_config

def _count(m): return sum(p.numel() for p in m.parameters())

def test_two_lines_build_mmsegs_deeplabv3_with_the_contrast():
    "By default the network is the mmseg DeepLabV3 R-101 of `cityscapes_aspp_r101`, plus the projection head of pixel contrast."
    torch.manual_seed(0)
    model = ctxseg.build_model('deeplabv3', backbone='resnet101', num_classes=19, method='pixel_contrast')
    mmseg = build_from_config(P.get('cityscapes_aspp_r101', ['model.pretrained=']), 19)
    pixcon = build_from_config(P.get('cityscapes_pixcon_aspp_r101', ['model.pretrained=']), 19)
    for part in ('backbone', 'head', 'aux_head'):
        a, b = getattr(model, part).state_dict(), getattr(mmseg, part).state_dict()
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}, part
    assert _count(model.backbone) == 42_519_392                                 # ResNet-101 V1c trunk, no fc
    assert type(model.method) is type(pixcon.method) and _count(model.method) == _count(pixcon.method)
    with torch.no_grad():
        out = model.eval()(torch.randn(1, 3, 64, 64))
    assert out.logits.shape == (1, 19, 8, 8) and not out.losses                 # no loss at inference

def test_a_config_goes_through_unchanged():
    cfg = P.get('smoke')
    torch.manual_seed(0); a = ctxseg.build_model(cfg, num_classes=8)
    torch.manual_seed(0); b = build_from_config(cfg, 8)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
