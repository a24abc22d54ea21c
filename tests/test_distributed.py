"Two-process torchrun (gloo, CPU): identical parameters on every rank, reduced metrics = single-process metrics."
import json, os, subprocess, sys
from pathlib import Path
import pytest
import torch
from ctxseg import configs as C
from ctxseg.data import build_dataset, build_loader
from ctxseg.engine import evaluate, load_checkpoint
from ctxseg.models.segmentor import build_model

HERE = Path(__file__).parent


def test_two_ranks_agree_and_metrics_reduce_exactly(tmp_path, torchrun):
    r = torchrun(str(HERE / 'ddp_worker.py'), str(tmp_path))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path / 'ddp.json').read_text())
    assert res['world'] == 2 and res['params_equal'] and res['buffers_equal']
    # the same checkpoint evaluated by one process over the whole validation set
    cfg = C.load_json(tmp_path / 'run' / 'config.json')
    ds = build_dataset(cfg.data, 'val')
    model = build_model(cfg, ds.num_classes, ds.ignore_index)
    model.load_state_dict(load_checkpoint(tmp_path / 'run' / 'checkpoint.pt')['model'])
    single = evaluate(model, build_loader(ds, 2, train=False), ds.num_classes, cfg.eval, torch.device('cpu'))
    assert single['mIoU'] == pytest.approx(res['metrics']['mIoU'], abs=1e-12)
    assert single['aAcc'] == pytest.approx(res['metrics']['aAcc'], abs=1e-12)
    assert single['IoU'] == pytest.approx(res['metrics']['IoU'], abs=1e-12, nan_ok=True)
    assert res['metrics']['world_size'] == 2


def test_cli_under_torchrun(tmp_path, torchrun):
    r = torchrun('-m', 'ctxseg.cli', 'train', 'smoke', '--out', str(tmp_path / 'r'), '--no-progress',
                 '--set', 'train.iters=2')
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert json.loads((tmp_path / 'r' / 'metrics.json').read_text())['world_size'] == 2
    assert r.stdout.count('mIoU') == 1                     # only rank 0 prints the table
