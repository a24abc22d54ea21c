"""The training notebooks (nbs/train/) under papermill, and the results pages made from them (issue 4).

- every training notebook runs headlessly (CI=true, no stdin) in the `smoke` profile through the runner's
  command line, writes `metrics.json` with finite values for each run, and its loss falls over the smoke
  iterations;
- a `time_budget` pauses a grid cleanly and the next execution resumes it;
- a failing cell makes the runner raise, and the partially executed notebook with the error stays on disk;
- the notebooks keep their `parameters` cell through `nbdev_clean`, and neither `nbdev_test` nor the book
  executes them; the book shows the committed `cpu` executed notebooks, whose numbers are recomputed here
  from the committed run artefacts.

Time: about a minute (three papermill executions of the smoke grid, each a few seconds of training plus
kernel start-up).
"""
from __future__ import annotations

import html
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path, PurePosixPath

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT / 'nbs' / 'train'
NOTEBOOKS = sorted(p for p in TRAIN.glob('*.ipynb') if not p.name.startswith(('.', '_')))
RESULTS = ROOT / 'book' / 'results' / 'cpu'
PARAMETERS = ('profile', 'presets', 'seeds', 'overrides', 'out_dir', 'time_budget', 'command')


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'}
    env.update(CI='true', HF_HUB_OFFLINE='1', HF_DATASETS_OFFLINE='1', PYTHONUNBUFFERED='1')
    return env


def _outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []) if o['output_type'] == kind]


def _images(nb) -> int:
    return sum('image/png' in o.get('data', {}) for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', []))


def _finite(x) -> bool: return isinstance(x, (int, float)) and math.isfinite(x)


# ------------------------------------------------------------------------------------ static checks
def test_training_notebooks_are_parameterised_and_skipped_by_nbdev_test(tmp_path):
    assert NOTEBOOKS, 'no training notebook in nbs/train/'
    from nbdev.test import _keep_file
    for nb_path in NOTEBOOKS:
        nb = nbformat.read(nb_path, as_version=4)
        tagged = [c for c in nb.cells if 'parameters' in c.metadata.get('tags', [])]
        assert len(tagged) == 1, f'{nb_path.name}: exactly one cell must be tagged `parameters`'
        names = {l.split('=')[0].strip() for l in tagged[0].source.splitlines() if '=' in l and not l.startswith('#')}
        assert set(PARAMETERS) <= names, f'{nb_path.name}: parameters cell lacks {set(PARAMETERS) - names}'
        # nbdev_clean (what CI runs) keeps the tag: settings.ini allows the `tags` cell metadata
        copy = tmp_path / nb_path.name
        shutil.copy2(nb_path, copy)
        r = subprocess.run([str(ROOT / '.venv' / 'bin' / 'nbdev_clean'), '--fname', str(copy)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert [c.metadata.get('tags') for c in nbformat.read(copy, as_version=4).cells
                if c.metadata.get('tags')] == [['parameters']], 'nbdev_clean dropped the parameters tag'
        assert not _keep_file(nb_path, '.notest'), 'nbdev_test would execute the training notebooks'
        title = next(c.source for c in nb.cells if c.cell_type == 'markdown')
        assert '- skip_exec: true' in title, f'{nb_path.name}: the book must not execute the source notebook'


def test_book_renders_the_executed_copies_and_never_executes_them():
    cfg = yaml.safe_load((ROOT / 'book' / '_config.yml').read_text())
    patterns = cfg['execute']['exclude_patterns']
    toc = yaml.safe_load((ROOT / 'book' / '_toc.yml').read_text())
    def entries(node):      # every `file:` entry of the toc, at any depth (a paper's chapter lists its own)
        if isinstance(node, dict):
            if 'file' in node: yield node
            for v in node.values(): yield from entries(v)
        elif isinstance(node, list):
            for v in node: yield from entries(v)
    core = next(p for p in toc['parts'] if p['caption'] == 'Core')['chapters']
    everywhere = list(entries(toc))
    for nb_path in NOTEBOOKS:
        src, res = f'nbs/train/{nb_path.stem}', f'book/results/cpu/{nb_path.stem}'
        for f in (src, res):    # myst-nb matches these patterns against the absolute source path
            assert any(PurePosixPath(ROOT.as_posix() + f'/{f}.ipynb').match(p) for p in patterns), \
                f'the book would execute {f}.ipynb: add it to execute.exclude_patterns in book/_config.yml'
        listed = [c['file'] for c in everywhere]
        assert res in listed, f'book/_toc.yml: {res} is not listed (in the Core part, or a section of its paper)'
        assert src not in listed, f'book/_toc.yml lists {src}, whose result sections are empty: list {res} only'


def test_training_notebooks_have_text_twins_in_sync():
    "jupytext's job: each training notebook has a py:percent twin (nbs/train/jupytext.toml), identical in content."
    import jupytext
    from jupytext.config import load_jupytext_configuration_file
    cfg = load_jupytext_configuration_file(str(TRAIN / 'jupytext.toml'))
    assert cfg.formats in ('ipynb,py:percent', ['ipynb,py:percent']), cfg.formats
    stale = []
    for nb_path in NOTEBOOKS:
        twin = nb_path.with_suffix('.py')
        assert twin.is_file(), f'{twin.relative_to(ROOT)} is missing: run `make pairs`'
        text = jupytext.writes(nbformat.read(nb_path, as_version=4), fmt='py:percent', config=cfg)
        if text != twin.read_text(): stale.append(twin.name)
        back = jupytext.reads(twin.read_text(), fmt='py:percent')          # and the twin reads back to the same cells
        assert [(c.cell_type, c.source) for c in back.cells] == [(c.cell_type, c.source) for c in
                                                                 nbformat.read(nb_path, as_version=4).cells], twin.name
    assert not stale, f'text twins out of date: {stale}; run `make pairs` (jupytext --sync nbs/train/*.ipynb)'
    orphans = sorted(p.name for p in TRAIN.glob('*.py') if not p.with_suffix('.ipynb').is_file())
    assert not orphans, f'text twins without a notebook: {orphans}'


def test_a_text_twin_runs_as_a_script(tmp_path):
    "A cluster job runs a chapter without Jupyter: `CTXSEG_PROFILE=smoke ipython nbs/train/<name>.py`."
    twin = TRAIN / 'combination.py'
    out = ROOT / 'runs' / 'smoke' / 'combination'
    shutil.rmtree(out, ignore_errors=True)
    r = subprocess.run([str(ROOT / '.venv' / 'bin' / 'ipython'), '--no-banner', str(twin)], cwd=TRAIN,
                       env={**_env(), 'CTXSEG_PROFILE': 'smoke', 'MPLBACKEND': 'Agg'}, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    assert 'profile smoke:' in r.stdout, r.stdout[-2000:]
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['status'] == 'complete' and summary['profile'] == 'smoke' and summary['runs']
    assert all(math.isfinite(x['metrics']['mIoU']) for x in summary['runs'])


def test_executed_copies_carry_the_prose_of_their_source():
    "The pages the book shows say what their source says (`tools/refresh_pages.py` copies prose, never code)."
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'refresh_pages.py'), '--check'], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_refresh_pages_copies_prose_and_refuses_changed_structure(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location('refresh_pages', ROOT / 'tools' / 'refresh_pages.py')
    rp = importlib.util.module_from_spec(spec); spec.loader.exec_module(rp)
    v4 = nbformat.v4
    src = v4.new_notebook(cells=[v4.new_markdown_cell('# T\n\n- skip_exec: true'), v4.new_markdown_cell('new words'),
                                 v4.new_code_cell("#| label: fig-x\n#| fig-cap: A caption.\nplot(2)")])
    out = v4.new_output('display_data', data={'text/plain': 'figure'})
    ex = v4.new_notebook(cells=[v4.new_markdown_cell('# T: cpu results'), v4.new_markdown_cell('old words'),
                                v4.new_code_cell('a = 1', metadata={'tags': ['injected-parameters']}),
                                v4.new_code_cell('#| echo: false\nplot(1)', outputs=[out])])
    new = rp.refreshed(src, ex, 'cpu')
    assert [c.source for c in new.cells] == ['# T: cpu results', 'new words', 'a = 1',
                                             '#| echo: false\n#| label: fig-x\n#| fig-cap: A caption.\nplot(1)']
    assert new.cells[3].outputs == [out]                                  # what ran, and its output, stay
    src.cells.append(v4.new_markdown_cell('more'))
    with pytest.raises(ValueError, match='no longer correspond'): rp.refreshed(src, ex, 'cpu')


def test_training_notebooks_cross_reference_by_absolute_paths():
    "Their executed copies live in book/results/<profile>/, so a relative {doc} target would point elsewhere there."
    import re
    for nb_path in NOTEBOOKS:
        nb = nbformat.read(nb_path, as_version=4)
        targets = [t for c in nb.cells if c.cell_type == 'markdown' for t in re.findall(r'\{doc\}`(?:[^`<]*<)?([^`>]+)>?`', c.source)]
        relative = [t for t in targets if not t.startswith('/')]
        assert not relative, f'{nb_path.name}: use /nbs/... or /book/... in {{doc}} references, not {relative}'


def test_committed_cpu_results_are_recomputed_from_their_artefacts():
    from ctxseg.grids import class_iou_table, grid_table, load_summary, read_json
    prov = read_json(RESULTS / 'provenance.json')
    assert prov, 'book/results/cpu/provenance.json is missing: run `ctxseg run-notebooks --profile cpu`'
    for nb_path in NOTEBOOKS:
        name = nb_path.stem
        executed = RESULTS / f'{name}.ipynb'
        assert executed.is_file(), f'{executed} is missing: run `ctxseg run-notebooks --profile cpu {name}`'
        p = prov[name]
        assert p['profile'] == 'cpu' and p['status'] in ('ok', 'paused') and p['git_commit'] and p['wall_time_s'] > 0
        assert p['machine']['hardware'] and p['command'].startswith('ctxseg run-notebooks --profile cpu')
        nb = nbformat.read(executed, as_version=4)
        assert not _outputs(nb, 'error'), f'{executed} holds an error'
        assert _images(nb) >= 2, f'{executed}: the loss curves and per-class IoU figures are missing'
        assert nb.cells[0].source.startswith('# ') and 'cpu results' in nb.cells[0].source.splitlines()[0]
        assert 'skip_exec' not in nb.cells[0].source
        summary = load_summary(RESULTS / name)
        assert summary['profile'] == 'cpu' and summary['runs']
        for r in summary['runs']:
            if 'metrics' in r:      # the summary's numbers are those of the committed metrics.json
                assert read_json(RESULTS / name / r['dir'] / 'metrics.json') == r['metrics']
                assert (RESULTS / name / r['dir'] / 'log.jsonl').is_file()
        table = grid_table(summary)
        for k in ('profile', 'dataset', 'hardware', 'command'): assert table.notes.get(k), k
        shown = [o['data']['text/html'] for kind in ('execute_result', 'display_data') for o in _outputs(nb, kind)   # a table per benchmark is displayed
                 if 'ctxseg-results' in o['data'].get('text/html', '')]
        assert shown, f'{executed}: no results table'
        # 'runs trained at' is newer than the pages executed before the caption learned it: checked where a page has it
        newer = 'runs trained at' not in ''.join(shown)
        cells = [c for r in table.rows for c in r] + [str(v) for k, v in table.notes.items() if not (newer and k == 'runs trained at')]
        if len(shown) > 1: cells += [c for r in class_iou_table(summary).rows for c in r]
        missing = [c for c in cells if f'>{html.escape(c)}<' not in ''.join(shown)]
        assert not missing, f'{executed}: its table does not show what its artefacts give: {missing}'


# ----------------------------------------------------------------------------- papermill executions
@pytest.fixture(scope='module')
def smoke(tmp_path_factory):
    "Every training notebook executed in the smoke profile by `python -m ctxseg.runner` (= `ctxseg run-notebooks`)."
    out = tmp_path_factory.mktemp('smoke')
    t = time.time()
    r = subprocess.run([sys.executable, '-m', 'ctxseg.runner', '--profile', 'smoke', '--out-root', str(out)], cwd=ROOT,
                       env=_env(), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
    return out, r, time.time() - t


def test_every_training_notebook_runs_headless_in_the_smoke_profile(smoke):
    out, r, _ = smoke
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-6000:]
    prov = json.loads((out / 'provenance.json').read_text())
    for nb_path in NOTEBOOKS:
        executed = out / nb_path.name
        nb = nbformat.read(executed, as_version=4)
        assert not _outputs(nb, 'error')
        injected = [c for c in nb.cells if 'injected-parameters' in c.metadata.get('tags', [])]
        assert injected and 'profile = "smoke"' in injected[0].source
        assert _images(nb) >= 2, f'{executed}: figures missing (MPLBACKEND=Agg leaking into the kernel?)'
        p = prov[nb_path.stem]
        assert p['status'] == 'ok' and p['profile'] == 'smoke' and p['wall_time_s'] > 0 and p['machine']['hardware']
        assert p['command'] == f'ctxseg run-notebooks --profile smoke --out-root {out}'
        assert 'git_commit' in p and p['parameters']['out_dir'] == str(out / nb_path.stem)   # outside the checkout: absolute


def test_smoke_runs_write_finite_metrics_and_the_loss_falls(smoke):
    out, r, _ = smoke
    assert r.returncode == 0, r.stderr[-3000:]
    for nb_path in NOTEBOOKS:
        summary = json.loads((out / nb_path.stem / 'summary.json').read_text())
        assert summary['status'] == 'complete' and summary['profile'] == 'smoke' and summary['runs']
        for run in summary['runs']:
            folder = out / nb_path.stem / run['dir']
            m = json.loads((folder / 'metrics.json').read_text())
            assert all(_finite(m[k]) and 0 <= m[k] <= 1 for k in ('mIoU', 'aAcc', 'mAcc')), m
            assert len(m['IoU']) == len(m['classes']) and any(_finite(v) for v in m['IoU'])
            assert all(_finite(v) or (isinstance(v, float) and math.isnan(v)) for v in m['IoU'])   # NaN: class absent
            log = [json.loads(l) for l in (folder / 'log.jsonl').read_text().splitlines() if l.strip()]
            losses = [l['loss'] for l in log if 'loss' in l and not l.get('eval')]
            assert len(losses) >= 6 and all(map(_finite, losses)), losses
            first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
            assert last < first, f"{run['dir']}: loss did not fall ({first:.3f} -> {last:.3f}): {losses}"


def test_a_time_budget_pauses_the_grid_and_the_next_execution_resumes(tmp_path):
    from ctxseg.notebooks import run_notebook
    nb_path = NOTEBOOKS[0]
    runs = tmp_path / 'runs'
    params = {'out_dir': str(runs), 'seeds': [0, 1], 'overrides': ['train.iters=8'], 'command': 'pytest'}
    run_notebook(nb_path, 'smoke', tmp_path / 'a.ipynb', {**params, 'time_budget': 0.01}, cwd=TRAIN)
    s = json.loads((runs / 'summary.json').read_text())
    assert s['status'] == 'paused', s
    assert [r['status'] for r in s['runs']] == ['paused', 'pending'] and s['runs'][0]['iter'] >= 1
    assert not (runs / s['runs'][0]['dir'] / 'metrics.json').exists()
    assert 'paused' in ''.join(o.get('text', '') for o in _outputs(nbformat.read(tmp_path / 'a.ipynb', as_version=4), 'stream'))
    run_notebook(nb_path, 'smoke', tmp_path / 'b.ipynb', params, cwd=TRAIN)
    s2 = json.loads((runs / 'summary.json').read_text())
    assert s2['status'] == 'complete' and [r['status'] for r in s2['runs']] == ['trained', 'trained']
    cfg = json.loads((runs / s2['runs'][0]['dir'] / 'config.json').read_text())
    iters = [l['iter'] for l in map(json.loads, (runs / s2['runs'][0]['dir'] / 'log.jsonl').read_text().splitlines())
             if not l.get('eval')]
    assert iters == list(range(1, cfg['train']['iters'] + 1)), iters   # resumed where it stopped: one log, no gap


def _notebook(path: Path, *sources: str) -> Path:
    cells = [nbformat.v4.new_code_cell("profile = 'smoke'\nout_dir = None\ncommand = ''", metadata={'tags': ['parameters']})]
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


def test_a_failing_cell_raises_and_keeps_the_partial_notebook(tmp_path):
    from ctxseg.notebooks import NotebookRunError, run_notebooks
    _notebook(tmp_path / 'repo' / 'nbs' / 'train' / 'broken.ipynb', "print('before the error')",
              "raise ValueError('bad ' + 'labels')", "print('after the error')")
    out = tmp_path / 'out'
    with pytest.raises(NotebookRunError) as e:
        run_notebooks('smoke', out_root=out, root=tmp_path / 'repo', log=lambda *a: None)
    saved = out / 'broken.ipynb'
    assert 'broken.ipynb' in str(e.value) and str(saved) in str(e.value) and 'ValueError: bad labels' in str(e.value)
    nb = nbformat.read(saved, as_version=4)
    code = [c for c in nb.cells if c.cell_type == 'code']
    texts = [''.join(o.get('text', '') for o in c.get('outputs', [])) for c in code]
    errors = _outputs(nb, 'error')
    assert 'before the error\n' in texts and len(errors) == 1 and errors[0]['ename'] == 'ValueError'
    assert not any('after the error' in t for t in texts)                 # nothing ran after the failure
    prov = json.loads((out / 'provenance.json').read_text())['broken']
    assert prov['status'] == 'failed' and 'ValueError' in prov['error']


def test_no_stdin_a_cell_asking_for_input_fails_at_once(tmp_path):
    from ctxseg.notebooks import NotebookRunError, run_notebook
    nb = _notebook(tmp_path / 'ask.ipynb', "input('continue? ')")
    t = time.time()
    with pytest.raises(NotebookRunError, match='StdinNotImplementedError'):
        run_notebook(nb, 'smoke', tmp_path / 'out.ipynb', timeout=60)
    assert time.time() - t < 60
