"Engine behaviour that does not fit a notebook: CLI runs, exact resume through the CLI, failure modes."
import json, subprocess, sys
from pathlib import Path
import pytest
import torch
from ctxseg import configs as C
from ctxseg import presets as P
from ctxseg import engine
from ctxseg.data import BadInputError
from ctxseg.engine import train, load_checkpoint, CheckpointError, NonFiniteLossError


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL, **kw)


def log_lines(run_dir):
    return [json.loads(l) for l in (Path(run_dir) / 'log.jsonl').read_text().splitlines()]


def test_cli_train_writes_the_run_folder(tmp_path, ctxseg_cmd):
    r = run(ctxseg_cmd + ['train', 'smoke', '--out', str(tmp_path / 'r'), '--no-progress', '--set', 'train.iters=4'])
    assert r.returncode == 0, r.stderr
    files = {p.name for p in (tmp_path / 'r').iterdir()}
    assert {'config.json', 'log.jsonl', 'metrics.json', 'checkpoint.pt', 'provenance.json'} <= files
    m = json.loads((tmp_path / 'r' / 'metrics.json').read_text())
    assert {'mIoU', 'aAcc', 'IoU'} <= set(m) and 0 <= m['mIoU'] <= 1
    log = log_lines(tmp_path / 'r')
    assert [l['iter'] for l in log] == [1, 2, 3, 4]
    assert all({'iter', 'loss', 'lr', 'seg', 'aux'} <= set(l) for l in log)
    assert abs(log[0]['loss'] - log[0]['seg'] - log[0]['aux']) < 1e-5   # loss is the sum of its terms
    assert 'mIoU' in r.stdout                                            # the results table


def test_exact_resume_via_cli(tmp_path, ctxseg_cmd):
    "3 iterations + resume + 3 iterations == 6 straight: same weights, same logged losses."
    common = ['--no-progress', '--set', 'train.deterministic=true', 'train.ckpt_interval=100', 'model.dropout=0.1']
    r = run(ctxseg_cmd + ['train', 'smoke', '--out', str(tmp_path / 'a')] + common)
    assert r.returncode == 0, r.stderr
    r = run(ctxseg_cmd + ['train', 'smoke', '--out', str(tmp_path / 'b')] + common + ['train.stop_after=3'])
    assert r.returncode == 0, r.stderr
    assert 'paused at iteration 3' in r.stdout and not (tmp_path / 'b' / 'metrics.json').exists()
    assert load_checkpoint(tmp_path / 'b' / 'checkpoint.pt')['iter'] == 3
    r = run(ctxseg_cmd + ['train', 'smoke', '--out', str(tmp_path / 'b'), '--resume'] + common)
    assert r.returncode == 0, r.stderr
    a, b = load_checkpoint(tmp_path / 'a' / 'checkpoint.pt'), load_checkpoint(tmp_path / 'b' / 'checkpoint.pt')
    assert a['iter'] == b['iter'] == 6
    for k in a['model']:
        assert torch.equal(a['model'][k], b['model'][k]), k
    for k in ('state', ):   # optimiser momentum buffers too
        sa, sb = a['optimizer'][k], b['optimizer'][k]
        assert all(torch.equal(sa[i]['momentum_buffer'], sb[i]['momentum_buffer']) for i in sa)
    la, lb = log_lines(tmp_path / 'a'), log_lines(tmp_path / 'b')
    assert [l['iter'] for l in lb] == [1, 2, 3, 4, 5, 6]
    for key in ('loss', 'seg', 'aux', 'lr'):
        assert [l[key] for l in la] == [l[key] for l in lb], key


def test_resume_after_time_budget_matches_straight_run(tmp_path):
    base = P.get('smoke', ['train.deterministic=true', 'model.dropout=0.1'])
    try:
        train(base, tmp_path / 'straight', progress=False)
        paused = train(C.apply_overrides(base, ['train.time_budget=1e-9']), tmp_path / 'split', progress=False)
        assert paused == {'status': 'paused', 'iter': 1}
        assert not (tmp_path / 'split' / 'metrics.json').exists()
        train(base, tmp_path / 'split', resume=True, progress=False)
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = load_checkpoint(tmp_path / 'straight' / 'checkpoint.pt'), load_checkpoint(tmp_path / 'split' / 'checkpoint.pt')
    assert all(torch.equal(a['model'][k], b['model'][k]) for k in a['model'])
    assert [l['loss'] for l in log_lines(tmp_path / 'straight')] == [l['loss'] for l in log_lines(tmp_path / 'split')]
    assert json.loads((tmp_path / 'straight' / 'metrics.json').read_text())['mIoU'] == \
        json.loads((tmp_path / 'split' / 'metrics.json').read_text())['mIoU']


def test_truncated_checkpoint_is_rejected(tmp_path, ctxseg_cmd):
    r = run(ctxseg_cmd + ['train', 'smoke', '--out', str(tmp_path / 'r'), '--no-progress', '--set', 'train.iters=2'])
    assert r.returncode == 0, r.stderr
    ck = tmp_path / 'r' / 'checkpoint.pt'
    ck.write_bytes(ck.read_bytes()[: ck.stat().st_size // 2])
    with pytest.raises(CheckpointError, match='truncated'):
        load_checkpoint(ck)
    r = run(ctxseg_cmd + ['train', 'smoke', '--out', str(tmp_path / 'r'), '--resume', '--no-progress'])
    assert r.returncode == 2 and 'truncated' in r.stderr


def test_existing_run_is_not_overwritten(tmp_path, ctxseg_cmd):
    out = tmp_path / 'r'
    assert run(ctxseg_cmd + ['train', 'smoke', '--out', str(out), '--no-progress', '--set', 'train.iters=2']).returncode == 0
    before = (out / 'checkpoint.pt').read_bytes()
    r = run(ctxseg_cmd + ['train', 'smoke', '--out', str(out), '--no-progress'])
    assert r.returncode == 2 and '--resume' in r.stderr
    assert (out / 'checkpoint.pt').read_bytes() == before


def test_nonfinite_loss_stops_with_term_and_iteration(tmp_path, ctxseg_cmd):
    r = run(ctxseg_cmd + ['train', 'smoke', '--out', str(tmp_path / 'r'), '--no-progress',
                          '--set', 'train.lr=1e30', 'train.iters=20', 'train.ckpt_interval=100'])
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert 'non-finite loss at iteration' in r.stderr and ('seg' in r.stderr or 'aux' in r.stderr)
    assert not (tmp_path / 'r' / 'metrics.json').exists()


class _BadLabels(torch.utils.data.Dataset):
    classes, palette, num_classes, ignore_index = ('a', 'b', 'c'), [(0, 0, 0)] * 3, 3, 255
    def __init__(self, kind): self.kind = kind
    def __len__(self): return 8
    def __getitem__(self, i):
        img, lab = torch.zeros(3, 32, 32), torch.zeros(32, 32, dtype=torch.long)
        if self.kind == 'values': lab[0, 0] = 7
        if self.kind == 'size': lab = lab[:16]
        if self.kind == 'dtype': lab = lab.float()
        return {'image': img, 'label': lab, 'name': str(i)}


@pytest.mark.parametrize('kind,msg', [('values', 'outside [0, 3)'), ('size', 'do not match'), ('dtype', 'integer')])
def test_bad_input_fails_before_training(tmp_path, monkeypatch, kind, msg):
    monkeypatch.setattr(engine, 'build_dataset', lambda cfg, split: _BadLabels(kind))
    with pytest.raises(BadInputError, match=msg.replace('[', r'\[').replace(')', r'\)')):
        train(P.get('smoke'), tmp_path / 'r', progress=False)
    assert not (tmp_path / 'r' / 'log.jsonl').exists() and not (tmp_path / 'r' / 'checkpoint.pt').exists()


def test_bad_override_is_a_clear_error(ctxseg_cmd, tmp_path):
    r = run(ctxseg_cmd + ['train', 'smoke', '--out', str(tmp_path / 'r'), '--set', 'train.itres=3'])
    assert r.returncode == 2 and 'train.iters' in r.stderr


@pytest.mark.parametrize('mode', ['slide', 'ms_flip'])
def test_eval_modes_and_predict(tmp_path, ctxseg_cmd, mode):
    out = tmp_path / 'r'
    assert run(ctxseg_cmd + ['train', 'smoke', '--out', str(out), '--no-progress', '--set', 'train.iters=2']).returncode == 0
    r = run(ctxseg_cmd + ['eval', str(out), '--mode', mode, '--no-progress', '--set', 'eval.crop_size=24,24',
                          'eval.stride=16,16', 'eval.scales=0.75,1.0'])
    assert r.returncode == 0, r.stderr
    m = json.loads((out / f'eval_{mode}.json').read_text())
    assert 0 <= m['mIoU'] <= 1
    if mode == 'slide':
        from PIL import Image
        import numpy as np
        Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(tmp_path / 'x.png')
        r = run(ctxseg_cmd + ['predict', str(out), str(tmp_path / 'x.png'), '--out', str(tmp_path / 'pred')])
        assert r.returncode == 0, r.stderr
        assert Image.open(tmp_path / 'pred' / 'x_label.png').size == (48, 40)


def test_demo_prints_a_table_and_reuses_finished_runs(tmp_path, ctxseg_cmd):
    args = ctxseg_cmd + ['demo', '--out', str(tmp_path / 'demo'), '--iters', '2', '--no-progress',
                         '--presets', 'synthetic_fcn', 'synthetic_psp', '--set', 'data.num_train=16', 'data.num_val=4']
    r = run(args)
    assert r.returncode == 0, r.stderr
    assert 'mIoU' in r.stdout and 'synthetic_psp' in r.stdout.split('mIoU')[-1]
    r = run(args)
    assert r.returncode == 0 and r.stdout.count('reusing') == 2


def test_demo_trains_deeplabv3_and_a_method_and_says_what_it_reproduced(tmp_path, ctxseg_cmd):
    "The default demo: DeepLabV3 and the method of the committed verdicts, their difference, the reproduction check, a PNG."
    args = ctxseg_cmd + ['demo', '--out', str(tmp_path / 'demo'), '--iters', '2', '--no-progress',
                         '--set', 'data.num_train=16', 'data.num_val=4']
    r = run(args)
    assert r.returncode == 0, r.stderr
    from ctxseg.cli import demo_choice, DEMO_BASELINE
    m = demo_choice()['method']
    assert f'DeepLabV3 ({DEMO_BASELINE}) and {m}' in r.stdout and f'Seed 0 on this machine: {m} − {DEMO_BASELINE} = ' in r.stdout
    assert r.stdout.count('bit for bit: not checked') == 2, r.stdout      # overrides: not the committed runs' config
    png = tmp_path / 'demo' / 'predictions.png'
    assert png.is_file() and png.stat().st_size > 10_000 and str(png) in r.stdout


def _ocr_run(out, env=None):
    "A short OCRNet run (the head whose bits depend on MKL's kernels) in a fresh process, through the CLI."
    import os
    cmd = [sys.executable, '-m', 'ctxseg.cli', 'train', 'synthetic_ocr', '--out', str(out), '--no-progress', '--set',
           'data.size=64', 'data.num_train=16', 'data.num_val=4', 'train.stop_after=6', 'train.log_interval=1',
           'train.ckpt_interval=100']
    e = {k: v for k, v in os.environ.items() if k not in ('MKL_CBWR', 'OMP_NUM_THREADS')}
    r = run(cmd, env={**e, **(env or {})})
    assert r.returncode == 0, r.stderr[-2000:]
    return [l['loss'] for l in log_lines(out)]


@pytest.mark.slow
def test_cpu_run_repeats_bit_for_bit_in_a_fresh_process(tmp_path):
    """The same config in two fresh processes gives the same losses to the last bit, with the thread count and
    MKL's code path pinned by the engine (the cpu presets set train.threads=2) and recorded in the provenance."""
    a, b = _ocr_run(tmp_path / 'a'), _ocr_run(tmp_path / 'b')
    assert len(a) == 6 and a == b
    prov = json.loads((tmp_path / 'a' / 'provenance.json').read_text())
    assert prov['mkl_cbwr'] == 'AVX2' and prov['torch_threads'] == P.get('synthetic_ocr').train.threads == 2
    assert prov['data_version'] == 'synthetic-v3'


def test_kept_scenes_train_the_same_run_as_scenes_drawn_afresh(tmp_path, monkeypatch):
    """The built-in benchmarks keep the scenes they have drawn (`ctxseg.synthetic.CACHE_BYTES`): a run that reads them
    back, three times each here, equals to the last bit one that draws every scene afresh, on both benchmarks."""
    from ctxseg import synthetic
    from ctxseg.data import procedural_dataset
    for ds in ('synthetic', 'aerial'):
        cfg = P.get('smoke', [f'data.dataset={ds}', 'data.num_train=4', 'data.num_val=2', 'train.log_interval=1'])
        D, drawn = procedural_dataset(ds), {}
        def counted(k, draw=D.generate):
            def g(*a, **kw): drawn[k] = drawn.get(k, 0) + 1; return draw(*a, **kw)
            return staticmethod(g)
        with monkeypatch.context() as m:
            m.setattr(D, 'generate', counted('kept'))
            train(cfg, tmp_path / f'{ds}_kept', progress=False)
        with monkeypatch.context() as m:
            m.setattr(synthetic, 'CACHE_BYTES', 0); m.setattr(D, 'generate', counted('fresh'))
            train(cfg, tmp_path / f'{ds}_fresh', progress=False)
        assert drawn['kept'] < drawn['fresh'] - 6, drawn          # 12 training draws of 4 scenes: 8 read back
        a, b = (log_lines(tmp_path / f'{ds}_{k}') for k in ('kept', 'fresh'))
        assert len(a) == 6 and [l['loss'] for l in a] == [l['loss'] for l in b], ds
        ma, mb = (json.loads((tmp_path / f'{ds}_{k}' / 'metrics.json').read_text()) for k in ('kept', 'fresh'))
        assert ma['IoU'] == mb['IoU'] and ma['data_version'].startswith(ds), ds
