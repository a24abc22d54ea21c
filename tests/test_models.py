"Backbones × heads: shapes, gradients, dilation schedules, stems and strict weight loading (03_backbones, 04_heads)."
import os
from functools import lru_cache
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from ctxseg.models import backbones as B
from ctxseg.models.backbones import (ResNet, HRNetV2, build_backbone, dilation_schedule, load_pretrained,
                                     pretrained_path, PretrainedMismatchError, SCHEDULES)
from ctxseg.models.heads import build_head, build_aux_head, HEADS

K = 5
BACKBONES = [(f'resnet{d}', stem) for d in (18, 50, 101) for stem in ('torchvision', 'v1c', 'deep')] + [('hrnet_w18', None)]


def make_backbone(name, stem):
    torch.manual_seed(0)
    return build_backbone(name, stem=stem, base_width=8) if stem else build_backbone(name)


def head_kwargs(name):
    kw = dict(channels=16)
    if name == 'ocr': kw['ocr_channels'] = 8
    if name == 'aspp': kw['dilations'] = [1, 2, 3, 4]      # a list, as a JSON config gives it
    if name == 'psp': kw['pool_scales'] = [1, 2, 3, 6]
    return kw


@pytest.mark.parametrize('head_name', sorted(HEADS))
@pytest.mark.parametrize('bb_name,stem', BACKBONES, ids=[f'{n}-{s}' if s else n for n, s in BACKBONES])
def test_backbone_head_forward_backward(bb_name, stem, head_name):
    bb = make_backbone(bb_name, stem)
    head = build_head(head_name, bb.out_channels, K, **head_kwargs(head_name))
    aux = build_aux_head(bb.out_channels, K, channels=8) if bb_name.startswith('resnet') else None
    x = torch.randn(2, 3, 64, 64)
    feats = bb(x)
    assert [f.shape[1] for f in feats] == bb.out_channels
    extra = 1 if stem == 'deep' else 0                                  # the ceil-mode stem adds one at 64 px
    assert [f.shape[-1] for f in feats] == [64 // s + extra for s in bb.strides]
    out = head(feats)
    s = 8 if bb_name.startswith('resnet') else 4                        # OS 8 ResNet, HRNetV2 concat at 1/4
    h = 64 // s + extra
    assert out['logits'].shape == (2, K, h, h)
    assert out['rep'].shape == (2, 16, h, h)
    target = torch.randint(0, K, (2, h, h))
    loss = F.cross_entropy(out['logits'], target)
    if 'aux_logits' in out:
        assert out['aux_logits'].shape == (2, K, h, h)
        loss = loss + 0.4 * F.cross_entropy(out['aux_logits'], target)
    if aux is not None:
        a = aux(feats)['logits']
        assert a.shape == (2, K, h, h)
        loss = loss + 0.4 * F.cross_entropy(a, target)
    loss.backward()
    modules = [bb, head] + ([aux] if aux is not None else [])
    params = [(n, p) for m in modules for n, p in m.named_parameters()]
    no_grad = [n for n, p in params if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for _, p in params)
    assert any(p.grad.abs().sum() > 0 for n, p in bb.named_parameters() if n.endswith('weight'))


@pytest.mark.parametrize('head_name', sorted(HEADS))
def test_rep_is_the_pre_classifier_representation(head_name):
    head = build_head(head_name, [8, 16], K, **head_kwargs(head_name)).eval()
    out = head([torch.randn(1, 8, 8, 8), torch.randn(1, 16, 8, 8)])     # batch 1 works in eval mode
    torch.testing.assert_close(head.classifier(out['rep']), out['logits'])


def test_heads_follow_the_init_and_bias_conventions():
    for name in HEADS:
        head = build_head(name, 64, K, channels=32)
        for m in head.modules():
            if type(m) is nn.Conv2d:
                assert m.bias is None, f"{name}: a conv followed by BN has a bias"
        assert head.classifier.bias.abs().sum() == 0
        assert 0.005 < head.classifier.weight.std() < 0.02
    with pytest.raises(KeyError, match='unknown head'): build_head('segformer', 8, 2)


@pytest.mark.parametrize('depth', [18, 50])
@pytest.mark.parametrize('os_,size', [(8, 8), (16, 4), (32, 2)])
def test_output_stride(depth, os_, size):
    net = ResNet(depth, output_stride=os_, base_width=8)
    with torch.no_grad(): feats = net(torch.randn(1, 3, 64, 64))
    assert feats[-1].shape[-1] == size
    assert net.strides[-1] == os_


@pytest.mark.parametrize('schedule', SCHEDULES)
@pytest.mark.parametrize('os_', [8, 16, 32])
@pytest.mark.parametrize('depth', [34, 101])
def test_block_dilations_match_the_schedule(schedule, os_, depth):
    net = ResNet(depth, dilation=schedule, output_stride=os_, base_width=8)
    blocks = ResNet.arch[depth][1]
    want = dilation_schedule(schedule, blocks, os_)
    for i, name in enumerate(net.feature_names):
        for j, blk in enumerate(getattr(net, name)):
            convs = [blk.conv1, blk.conv2] if depth < 50 else [blk.conv2]
            for c in convs:
                assert c.dilation == (want[i][j],) * 2 and c.padding == (want[i][j],) * 2, (name, j)
            if j > 0: assert c.stride == (1, 1)


def test_schedule_tables():
    r101 = (3, 4, 23, 3)
    assert dilation_schedule('mmseg', r101)[2:] == [[1] + [2] * 22, [2, 4, 4]]
    assert dilation_schedule('multigrid', r101)[3] == [4, 8, 16]
    assert dilation_schedule('gald', r101)[2:] == [[2] * 23, [4, 8, 16]]
    assert dilation_schedule('deeplab', r101, 16) == dilation_schedule('mmseg', r101, 16)


@pytest.mark.parametrize('size,v1c,deep', [(64, 16, 17), (65, 17, 17), (63, 16, 17), (66, 17, 17), (769, 193, 193), (512, 128, 129)])
def test_stem_rounding(size, v1c, deep):
    for stem, want in [('v1c', v1c), ('deep', deep), ('torchvision', v1c)]:
        net = ResNet(18, stem, base_width=8)
        with torch.no_grad(): got = net.forward_stem(torch.zeros(1, 3, size, size)).shape[-1]
        assert got == want, (stem, size)


def test_stem_widths_scale_with_base_width():
    assert [ResNet(50, 'v1c', base_width=16).stem[i].out_channels for i in (0, 3, 6)] == [8, 8, 16]
    assert [ResNet(50, 'deep', base_width=16).stem[i].out_channels for i in (0, 3, 6)] == [16, 16, 32]
    assert ResNet(50, 'torchvision', base_width=16).conv1.out_channels == 16
    assert ResNet(50, 'deep', base_width=16).layer1[0].conv1.in_channels == 32
    with pytest.raises(ValueError, match='stem'): ResNet(50, 'resnetd')
    with pytest.raises(ValueError, match='depth'): ResNet(26)


# ---- weights ------------------------------------------------------------------------------------------

def mmseg_v1c_state_dict(depth=50, w=64, seed=0):
    "A checkpoint in mmseg's ResNetV1c layout (stem.0…stem.7, layerX.Y.convZ/bnZ, downsample.0/1, fc), built"
    " from mmseg's naming and channel arithmetic, not from our model."
    g = torch.Generator().manual_seed(seed)
    blocks = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}[depth]
    bottleneck, e = depth >= 50, (4 if depth >= 50 else 1)
    sd = {}
    def conv(name, cout, cin, k): sd[f'{name}.weight'] = torch.randn(cout, cin, k, k, generator=g) * 0.1
    def bn(name, c):
        sd[f'{name}.weight'] = torch.rand(c, generator=g) + .5; sd[f'{name}.bias'] = torch.randn(c, generator=g) * .1
        sd[f'{name}.running_mean'] = torch.randn(c, generator=g) * .1; sd[f'{name}.running_var'] = torch.rand(c, generator=g) + .5
        sd[f'{name}.num_batches_tracked'] = torch.tensor(7)
    conv('stem.0', w // 2, 3, 3); bn('stem.1', w // 2); conv('stem.3', w // 2, w // 2, 3); bn('stem.4', w // 2)
    conv('stem.6', w, w // 2, 3); bn('stem.7', w)
    cin = w
    for i, n in enumerate(blocks):
        p = w * 2 ** i
        for j in range(n):
            pre = f'layer{i + 1}.{j}'
            if bottleneck:
                conv(f'{pre}.conv1', p, cin, 1); bn(f'{pre}.bn1', p); conv(f'{pre}.conv2', p, p, 3); bn(f'{pre}.bn2', p)
                conv(f'{pre}.conv3', p * e, p, 1); bn(f'{pre}.bn3', p * e)
            else:
                conv(f'{pre}.conv1', p, cin, 3); bn(f'{pre}.bn1', p); conv(f'{pre}.conv2', p, p, 3); bn(f'{pre}.bn2', p)
            if j == 0 and cin != p * e:
                conv(f'{pre}.downsample.0', p * e, cin, 1); bn(f'{pre}.downsample.1', p * e)
            cin = p * e
    sd['fc.weight'] = torch.randn(1000, cin, generator=g); sd['fc.bias'] = torch.zeros(1000)
    return sd


@pytest.mark.parametrize('depth', [18, 50])
def test_v1c_loads_an_mmseg_layout_checkpoint_strictly(tmp_path, depth):
    sd = mmseg_v1c_state_dict(depth, w=16)
    torch.save({'meta': {'epoch': 100}, 'state_dict': sd}, tmp_path / 'v1c.pth')
    net = ResNet(depth, 'v1c', base_width=16)
    rep = load_pretrained(net, tmp_path / 'v1c.pth', key_map='mmseg_v1c')
    assert rep['dropped'] == ['fc.weight', 'fc.bias'] and not rep['missing'] and not rep['unexpected']
    own = net.state_dict()
    for k, v in sd.items():
        if not k.startswith('fc.'): assert torch.equal(own[k], v), k       # every tensor landed where it belongs
    assert rep['loaded'] == len(own)


def test_mmseg_segmentor_checkpoint_and_ddp_prefix(tmp_path):
    sd = mmseg_v1c_state_dict(18, w=16)
    seg = {f'backbone.{k}': v for k, v in sd.items() if not k.startswith('fc.')}
    seg['decode_head.conv_seg.weight'] = torch.zeros(19, 16, 1, 1)
    torch.save({'state_dict': seg}, tmp_path / 'seg.pth')
    net = ResNet(18, 'v1c', base_width=16)
    rep = load_pretrained(net, tmp_path / 'seg.pth', key_map='auto')
    assert rep['key_map'] == 'mmseg_v1c' and rep['dropped'] == ['decode_head.conv_seg.weight']
    torch.save({'model': {f'module.{k}': v for k, v in sd.items()}}, tmp_path / 'ddp.pth')
    rep = load_pretrained(ResNet(18, 'v1c', base_width=16), tmp_path / 'ddp.pth', key_map='mmseg_v1c')
    assert rep['loaded'] == len(net.state_dict())


def test_torchvision_resnet50_checkpoint_gives_torchvision_outputs(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet50(weights=None)
    for m in tv.modules():
        if isinstance(m, nn.BatchNorm2d): m.running_mean.normal_(0, .1); m.running_var.uniform_(.5, 2)
    sd = {k: v for k, v in tv.state_dict().items() if not k.endswith('num_batches_tracked')}   # an old-style file
    torch.save(sd, tmp_path / 'r50.pth')
    ours = ResNet(50, 'torchvision', output_stride=32)
    load_pretrained(ours, tmp_path / 'r50.pth', key_map='torchvision', strict=True)
    tv.eval(); ours.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        y = tv.maxpool(tv.relu(tv.bn1(tv.conv1(x))))
        for i, f in enumerate(ours(x)):
            y = getattr(tv, f'layer{i + 1}')(y)
            torch.testing.assert_close(f, y)


def test_mismatches_are_named(tmp_path):
    sd = torchvision.models.resnet18(weights=None).state_dict()
    del sd['layer3.1.bn1.running_var']
    sd['layer1.0.conv2.weight'] = torch.zeros(64, 64, 1, 1)
    sd['extra.weight'] = torch.zeros(1)
    torch.save(sd, tmp_path / 'bad.pth')
    with pytest.raises(PretrainedMismatchError) as e:
        load_pretrained(ResNet(18, 'torchvision'), tmp_path / 'bad.pth', key_map='torchvision')
    msg = str(e.value)
    assert 'layer3.1.bn1.running_var' in msg and 'extra.weight' in msg
    assert 'layer1.0.conv2.weight (checkpoint (64, 64, 1, 1) vs model (64, 64, 3, 3))' in msg
    assert isinstance(e.value, RuntimeError)
    with pytest.warns(UserWarning, match='1 missing keys'):
        rep = load_pretrained(ResNet(18, 'torchvision'), tmp_path / 'bad.pth', key_map='torchvision', strict=False)
    assert rep['unexpected'] == ['extra.weight'] and rep['mismatched'][0][0] == 'layer1.0.conv2.weight'
    with pytest.raises(KeyError, match='unknown key_map'):
        load_pretrained(ResNet(18, 'torchvision'), tmp_path / 'bad.pth', key_map='caffe')


def test_callable_key_map(tmp_path):
    net = ResNet(18, 'torchvision', base_width=8)
    torch.save({f'encoder.{k}': v for k, v in net.state_dict().items()}, tmp_path / 'enc.pth')
    rep = load_pretrained(ResNet(18, 'torchvision', base_width=8), tmp_path / 'enc.pth',
                          key_map=lambda k: k.removeprefix('encoder.'))
    assert rep['loaded'] == len(net.state_dict())


def test_pretrained_path_offline(tmp_path, monkeypatch):
    def offline(*a, **k): raise OSError('no network')
    monkeypatch.setattr(torch.hub, 'download_url_to_file', offline)
    monkeypatch.setenv('CTXSEG_WEIGHTS', str(tmp_path))
    with pytest.raises(RuntimeError) as e: pretrained_path('resnet101_v1c')
    assert str(tmp_path / 'resnet101_v1c-e67eebb6.pth') in str(e.value)
    assert 'https://download.openmmlab.com/pretrain/third_party/resnet101_v1c-e67eebb6.pth' in str(e.value)
    with pytest.raises(RuntimeError, match='hrnet_w48.ms_in1k.safetensors'): pretrained_path('hrnet_w48')


def test_build_backbone_pretrained_true_uses_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('CTXSEG_WEIGHTS', str(tmp_path))
    torch.save({'state_dict': mmseg_v1c_state_dict(18, w=64)}, tmp_path / 'resnet18_v1c-b5776b93.pth')
    net = build_backbone('resnet18', stem='v1c', pretrained=True)
    assert torch.equal(net.stem[0].weight, mmseg_v1c_state_dict(18, w=64)['stem.0.weight'])
    with pytest.raises(ValueError, match="'v1c' stem"):
        build_backbone('resnet18', stem='deep', base_width=64, pretrained='resnet18_v1c')


def test_hrnet_outputs_and_options():
    net = HRNetV2(18, align_corners=True)
    with torch.no_grad(): feats = net(torch.randn(1, 3, 96, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(18, 24, 16), (36, 12, 8), (72, 6, 4), (144, 3, 2), (270, 24, 16)]
    up = F.interpolate(feats[3], size=(24, 16), mode='bilinear', align_corners=True)
    torch.testing.assert_close(feats[4][:, -144:], up)
    assert net.feature_names == ['branch1', 'branch2', 'branch3', 'branch4', 'concat']
    with pytest.raises(ValueError, match='does not apply'): build_backbone('hrnet_w18', output_stride=16)
    with pytest.raises(ValueError, match='timm has no'): HRNetV2(17)


def test_one_copy_of_the_context_blocks():
    """PSPHead and ASPPHead are the PyramidPooling and ASPP blocks plus a classifier: the state-dict names are those
    of the heads before the blocks were shared (so no checkpoint needs a map), and a block given a head's weights
    computes the head's representation exactly."""
    from ctxseg.models.heads import PSPHead, ASPPHead, PyramidPooling, ASPP
    torch.manual_seed(0)
    x = torch.randn(2, 8, 9, 9)
    for head, block, names in (
            (PSPHead(8, 3, channels=4, pool_scales=(1, 2)), PyramidPooling(8, 4, (1, 2)),
             ['bottleneck.0', 'bottleneck.1', 'classifier', 'stages.0.1.0', 'stages.0.1.1', 'stages.1.1.0', 'stages.1.1.1']),
            (ASPPHead(8, 3, channels=4, dilations=(1, 2)), ASPP(8, 4, (1, 2)),
             ['bottleneck.0', 'bottleneck.1', 'branches.0.0', 'branches.0.1', 'branches.1.0', 'branches.1.1', 'classifier',
              'image_pool.1.0', 'image_pool.1.1'])):
        assert sorted({k.rsplit('.', 1)[0] for k in head.state_dict()}) == names
        sd = head.state_dict()
        block.load_state_dict({k: sd[k] for k in block.state_dict()}, strict=True)
        head.eval(); block.eval()
        with torch.no_grad(): assert torch.equal(head(x)['rep'], block(x))
