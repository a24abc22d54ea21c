"""MCIBI (issue 13): the memory on two gloo ranks (identical, the mean of the local updates), exact resume with the
memory, and the eval-mode contract (no update, no training loss, the output depends on the stored memory). The
public functions are tested against loop references in nbs/51_mcibi_module.ipynb.

Time: about half a minute (two short smoke trainings and one 2-process torchrun)."""
from __future__ import annotations
import json
from pathlib import Path
import torch
from ctxseg import presets as P
from ctxseg.models.segmentor import build_model

HERE = Path(__file__).parent
ROOT = HERE.parent
KW = 'model.head_kwargs={"dilations": [1, 2], "transform_channels": 8, "momentum_base_lr": 0.009, "consistency_weight": 1.0, "consistency_from_iter": 2}'


def _cfg(extra=()):
    return P.get('smoke', ['model.head=mcibi', KW, *extra])


def test_two_ranks_hold_the_mean_of_their_updates(tmp_path, torchrun):
    r = torchrun(HERE / 'ddp_mcibi_worker.py', tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path / 'mcibi_ddp.json').read_text())
    assert res['world'] == 2 and res['memories_equal']
    assert res['locals_differ'] > 1e-3                  # the ranks saw different images ...
    assert res['is_mean_of_local_updates'] < 1e-6       # ... and both hold the mean of their two updates
    assert res['train_memories_equal']


def test_resume_restores_the_memory_exactly(tmp_path, resume_pair):
    base = _cfg(['train.iters=6', 'train.deterministic=true', 'train.ckpt_interval=100'])
    a, b, mid = resume_pair(base, tmp_path)
    assert int(mid['head.step']) == 3 and mid['head.memory'].abs().sum() > 0
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]
    assert int(a['head.step']) == 6
    log = [json.loads(l) for l in (tmp_path / 'straight' / 'log.jsonl').read_text().splitlines() if l.strip()]
    train_log = [l for l in log if not l.get('eval')]
    assert 'stage1' in train_log[0] and 'consistency' not in train_log[0] and 'consistency' in train_log[-1]


def test_eval_mode_updates_nothing_and_reads_the_stored_memory():
    torch.manual_seed(0)
    net = build_model(_cfg(), 4).eval()
    x, y = torch.randn(2, 3, 32, 32), torch.randint(0, 4, (2, 32, 32))
    with torch.no_grad():
        a = net(x, y)
        assert a.losses == {} and net.head.memory.abs().sum() == 0 and int(net.head.step) == 0
        net.head.memory.normal_()
        b = net(x, y)
    assert (a.logits - b.logits).abs().max() > 1e-4


def test_every_baseline_backbone_through_the_config():
    "ResNet-50-D8 and HRNet (at 1/8 through downsample_input) build and train a step with both heads, by config alone."
    x, y = torch.randn(2, 3, 64, 64), torch.randint(0, 5, (2, 64, 64))
    for bb, extra in (('resnet50', {}), ('hrnet_w18', {'downsample_input': True})):
        for variant in ('mcibi', 'mcibi++'):
            kw = {'variant': variant, 'dilations': [1, 2], 'transform_channels': 16, **extra}
            cfg = P.get('smoke', [f'model.backbone={bb}', 'model.base_width=16' if bb.startswith('resnet') else 'model.base_width=64',
                                  'model.head=mcibi', 'model.head_channels=32', 'model.head_kwargs=' + json.dumps(kw)])
            torch.manual_seed(0)
            net = build_model(cfg, 5).train(); net.lr = cfg.train.lr
            res = net(x, y)
            res.loss.backward()
            assert 'stage1' in res.losses and torch.isfinite(res.loss)
            if bb.startswith('hrnet'):
                r = net.head.memory_input(net.head.downsample(net.backbone(x)[-1]))
                assert r.shape[-1] == 64 // 8

