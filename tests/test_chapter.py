"""`ctxseg.chapter` beyond its notebook's inline tests (nbs/11e_chapter.ipynb): the gpu profile's stop, the committed
reference grid, and the training notebooks' use of it: they import only names it has, and none of them writes again
what it holds (a model loaded from a run folder, the per-class pixel draw, the paired-plot grid, a results file, the
mean ± std format)."""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from ctxseg import chapter
from ctxseg.chapter import Chapter, describe, only, reference_rows, results_path, setup, with_rows
from ctxseg.grids import load_summary, merge_summaries
from ctxseg.provenance import repo_root
from ctxseg import presets as P

ROOT = Path(__file__).resolve().parents[1]
TRAIN = sorted((ROOT / 'nbs' / 'train').glob('*.py'))
RESULTS = ROOT / 'book' / 'results' / 'cpu'
QUIET = dict(log=lambda *a: None)


def test_the_gpu_profile_stops_at_once_without_a_gpu_and_its_data(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    ch = setup('x', {'gpu': dict(presets=['cityscapes_aspp_r101'], seeds=[0])}, 'gpu', **QUIET)
    with pytest.raises(RuntimeError, match='needs a CUDA device'): ch.check_gpu()
    assert describe(ch.cfgs['cityscapes_aspp_r101']).startswith('resnet101 + aspp, cityscapes ')   # a crop size, not a size
    assert results_path(ch, 'memory') == repo_root() / 'book' / 'results' / 'gpu' / 'x_memory.json'


def test_overrides_keep_the_committed_rows_out(tmp_path):
    "Overrides change the presets, so the committed grids' runs no longer stand for them."
    d = {'cpu': dict(presets=['synthetic_aspp_regcon'], seeds=[0], reference='book/results/cpu/baselines')}
    ch = setup('x', d, 'cpu', overrides=['train.iters=10'], out_dir=tmp_path, **QUIET)
    assert chapter.committed_rows(ch, 'pixel_contrast', 'synthetic_aspp_pixcon_batch') is None
    assert reference_rows(ch, may_differ=('method.name', 'method.params')) is None


@pytest.mark.slow
def test_the_reference_rows_are_the_committed_baselines(tmp_path):
    "In the cpu profile the committed baseline runs stand for the chapter's DeepLabV3 rows (`load_reference` checks them)."
    d = {'cpu': dict(presets=['synthetic_aspp_regcon'], seeds=[0, 1, 2, 3, 4], reference='book/results/cpu/baselines')}
    ch = setup('region_contrast', d, 'cpu', out_dir=tmp_path, **QUIET)
    ref = reference_rows(ch, may_differ=('method.name', 'method.params'))
    assert {r['preset'] for r in ref['runs']} >= {'synthetic_fcn', 'synthetic_aspp', 'aerial_aspp', 'synthetic_aspp_balanced'}


def test_with_rows_is_the_merge_the_results_pages_made_by_hand():
    rc, bl, pc = (load_summary(RESULTS / n) for n in ('v2/region_contrast', 'v2/baselines', 'v2/pixel_contrast'))
    hand = lambda s, p: {**s, 'runs': [r for r in s['runs'] if r['preset'] == p]}
    old = {**merge_summaries(hand(bl, 'synthetic_aspp'), hand(pc, 'synthetic_aspp_pixcon_batch'), rc),
           'presets': ['synthetic_aspp', 'synthetic_aspp_pixcon_batch', *rc['presets']]}
    new = with_rows(rc, (only(bl, 'synthetic_aspp'), 'synthetic_aspp'), (only(pc, 'synthetic_aspp_pixcon_batch'), 'synthetic_aspp_pixcon_batch'))
    assert new == old


def _imports(path: Path) -> dict[str, set[str]]:
    "{module: names} of the `from ctxseg... import names` statements of a training notebook's twin."
    out = {}
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or '').startswith('ctxseg'):
            out.setdefault(node.module, set()).update(a.name for a in node.names)
    return out


@pytest.mark.parametrize('path', TRAIN, ids=[p.stem for p in TRAIN])
def test_a_training_notebook_imports_the_chapter_helpers_and_not_the_runner(path):
    got = _imports(path)
    assert 'ctxseg.runner' not in got, f'{path.name}: import from the real modules (grids, protocol, provenance, chapter)'
    assert {'setup', 'train_chapter'} <= got.get('ctxseg.chapter', set()), f'{path.name}: set up and train through ctxseg.chapter'
    for module, names in got.items():
        if module == 'ctxseg.chapter': assert names <= set(chapter.__all__), names - set(chapter.__all__)


# What a training notebook must not write again: each pattern is the shape of a helper of ctxseg.chapter or ctxseg.grids.
WRITTEN_ONCE = {
    'the setup (chapter.setup)': r'PROFILE_DEFAULTS\[profile\]|unknown profile',
    'a model loaded from a run folder (chapter.load_model)': r'load_state_dict\(load_checkpoint',
    'the per-class pixel draw (chapter.class_sample)': r'randperm\(int\(\(y == c\)',
    'the paired-plot grid (chapter.plot_pairs)': r'plot_paired\(',
    'a results file written by hand (chapter.save_results)': r'write_text\(json\.dumps|json\.dump\(',
    'a mean ± std written by hand (grids.plus_minus)': r'± \{',
    'the smoke overrides (chapter.SMOKE_OVERRIDES)': r"'train\.iters=24'",
}


@pytest.mark.parametrize('path', TRAIN, ids=[p.stem for p in TRAIN])
def test_a_training_notebook_does_not_write_again_what_the_chapter_helper_holds(path):
    text = path.read_text()
    found = [what for what, pat in WRITTEN_ONCE.items() if re.search(pat, text)]
    assert not found, f'{path.name} writes again: {found}'


def test_the_results_pages_link_to_the_training_figures_instead_of_redrawing_them():
    import nbformat
    for page in sorted((ROOT / 'nbs').glob('*_results.ipynb')):
        nb = nbformat.read(page, as_version=4)
        code = '\n'.join(c.source for c in nb.cells if c.cell_type == 'code')
        prose = '\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown')
        assert 'plot_paired(' not in code, f'{page.name} redraws the paired plot of its training page'
        assert '{numref}`fig-train-' in prose, f'{page.name} links to no figure of its training page'


def _train_queue():
    import importlib.util
    spec = importlib.util.spec_from_file_location('train_queue', ROOT / 'tools' / 'train_queue.py')
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


def test_train_queue_reads_each_chapters_cpu_grid():
    "The queue trains exactly the grid the training notebook's cpu profile trains, on both benchmarks."
    q = _train_queue()
    for name in ('contextrast', 'mcibi', 'region_contrast', 'gald', 'pixel_contrast'):
        d = q.cpu_defaults(name)
        assert d['seeds'] == [0, 1, 2, 3, 4], name
        assert 'synthetic_aspp' in d['presets'] and any(p.startswith('aerial_') for p in d['presets']), name


def test_train_queue_refuses_a_notebook_without_defaults(tmp_path):
    (tmp_path / 'nbs' / 'train').mkdir(parents=True)
    (tmp_path / 'nbs' / 'train' / 'xx.py').write_text('# %%\nx = 1\n')
    with pytest.raises(SystemExit, match='no PROFILE_DEFAULTS'): _train_queue().cpu_defaults('xx', root=tmp_path)


def test_train_queue_stages_finished_runs_and_restores_them(tmp_path):
    "A finished run is staged without its checkpoint and restored into an empty grid; a paused run is not staged."
    q = _train_queue()
    out, staged = tmp_path / 'runs', tmp_path / 'stage'
    done, paused = out / 'p' / 'seed0', out / 'p' / 'seed1'
    for r in (done, paused):
        r.mkdir(parents=True)
        (r / 'config.json').write_text('{}'); (r / 'checkpoint.pt').write_bytes(b'x'); (r / 'log.jsonl').write_text('{"iter": 1}\n')
    (done / 'metrics.json').write_text('{"mIoU": 0.5}')
    assert q.stage(out, staged) == ['p/seed0']
    assert sorted(f.name for f in (staged / 'p' / 'seed0').iterdir()) == ['config.json', 'log.jsonl', 'metrics.json']
    assert not (staged / 'p' / 'seed1').exists()
    assert q.stage(out, staged) == []                                   # nothing new
    (done / 'metrics.json').write_text('{"mIoU": 0.6}')                 # retrained: staged again
    assert q.stage(out, staged) == ['p/seed0']
    fresh = tmp_path / 'fresh'
    (fresh / 'p' / 'seed0').mkdir(parents=True); (fresh / 'p' / 'seed0' / 'checkpoint.pt').write_bytes(b'old')
    assert q.restore(staged, fresh) == ['p/seed0']
    assert (fresh / 'p' / 'seed0' / 'metrics.json').read_text() == '{"mIoU": 0.6}'
    assert not (fresh / 'p' / 'seed0' / 'checkpoint.pt').exists()       # a half-trained leftover is replaced
    assert q.restore(staged, fresh) == []
    (out / 'base' / 'seed0').mkdir(parents=True); (out / 'base' / 'seed0' / 'metrics.json').write_text('{}')
    assert q.stage(out, staged, skip={'base/seed0'}) == []              # a run adopted from another grid stays there
    (out / 'base' / 'seed1').mkdir(parents=True); (out / 'base' / 'seed1' / 'metrics.json').write_text('{}')
    assert q.stage(out, staged, skip={'base/seed0'}) == ['base/seed1']  # ... but a seed trained here is staged


def test_more_seeds_grids_are_rows_of_their_chapters():
    "Each extra-seeds grid trains seeds 5-9 of rows of its chapter's cpu grid; the committed one holds exactly its rows."
    q = _train_queue()
    for name, (chapter, presets) in q.MORE_SEEDS.items():
        d = q.cpu_defaults(name)
        assert d['seeds'] == [5, 6, 7, 8, 9] and d['presets'] == presets, name
        assert set(presets) <= set(q.cpu_defaults(chapter)['presets']), name
    committed = ROOT / 'book' / 'results' / 'cpu' / 'pixel_contrast_seeds' / 'summary.json'
    runs = json.loads(committed.read_text())['runs']
    assert {r['preset'] for r in runs} == set(q.MORE_SEEDS['pixel_contrast_seeds'][1])
    assert {r['seed'] for r in runs} == set(q.MORE_SEED_LIST)
