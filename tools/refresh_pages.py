"""Carry the prose of the training notebooks into their executed copies, without running anything.

The book shows the executed copies of the training notebooks (`book/results/<profile>/<name>.ipynb`, written by
`ctxseg run-notebooks`). Executing one again costs hours when its runs are not on this machine, yet its prose
(markdown cells: explanations, the reproduce box, links) and its figure directives (`#| fig-cap`, `#| label`,
`#| fig-alt`, which are comments) change more often than its code. This tool copies exactly those parts from the
clean source `nbs/train/<name>.ipynb` into the executed copy:

- every markdown cell (the title keeps the profile suffix that `run-notebooks` adds);
- the figure directive lines at the top of each code cell.

The code lines and outputs of the executed copy are never touched: they stay what ran. It refuses (and writes
nothing) when the two notebooks no longer have the same sequence of cells (markdown/code, the papermill parameters
cell aside), because prose would then sit beside the wrong outputs; re-execute with `ctxseg run-notebooks` then.
Each refresh is recorded in `provenance.json` under `prose_refreshed` (the commit whose prose was copied).

    python tools/refresh_pages.py [NAME ...] [--profile cpu] [--check]

`--check` writes nothing and exits 1 if a copy's prose differs from its source (tests/test_notebooks.py runs it).
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
_DIRECTIVE = re.compile(r'^\s*#\s*\|')
_FIGURE = re.compile(r'^\s*#\s*\|\s*(fig-cap|fig-alt|label)\s*:')


def _cells(nb) -> list:
    "The cells that correspond between a source and its executed copy (papermill's injected cell aside)."
    return [c for c in nb.cells if 'injected-parameters' not in c.metadata.get('tags', [])]


def _split(source: str) -> tuple[list[str], list[str]]:
    "(leading `#|` directive lines, the rest) of a code cell."
    lines = source.splitlines()
    i = 0
    while i < len(lines) and (_DIRECTIVE.match(lines[i]) or not lines[i].strip()): i += 1
    return lines[:i], lines[i:]


def _with_figure_directives(executed: str, source: str) -> str:
    "The executed cell's source with the source cell's figure directives in place of its own."
    ex_dirs, ex_code = _split(executed)
    src_dirs, _ = _split(source)
    if not any(_FIGURE.match(l) for l in ex_dirs + src_dirs): return executed
    dirs = [l for l in ex_dirs if l.strip() and not _FIGURE.match(l)] + [l for l in src_dirs if _FIGURE.match(l)]
    return '\n'.join(dirs + ex_code)


def _title(source_md: str, profile: str) -> str:
    lines = [l for l in source_md.splitlines() if not l.strip().startswith('- skip_exec:')]
    lines[0] = lines[0].rstrip() + f': {profile} results'
    return '\n'.join(lines).rstrip()


def refreshed(source_nb, executed_nb, profile: str = 'cpu'):
    """The executed notebook with the source's markdown and figure directives; raises ValueError when the cell
    sequences differ."""
    src, ex = _cells(source_nb), _cells(executed_nb)
    kinds = lambda cs: [c.cell_type for c in cs]
    if kinds(src) != kinds(ex):
        raise ValueError(f'the cells no longer correspond ({len(src)} cells in the source, {len(ex)} in the executed '
                         f'copy, or another order of markdown and code): execute it again with `ctxseg run-notebooks`')
    out = nbformat.reads(nbformat.writes(executed_nb), as_version=4)
    cells = _cells(out)
    title_done = False
    for s, e in zip(src, cells):
        if s.cell_type == 'markdown':
            if not title_done and s.source.lstrip().startswith('# '):
                e.source, title_done = _title(s.source, profile), True
            else:
                e.source = s.source
        elif s.cell_type == 'code':
            e.source = _with_figure_directives(e.source, s.source)
    return out


def awaits_new_benchmark(name: str, source_nb, res: Path) -> bool:
    """Whether the source trains on both benchmarks of v3 (`on_both`) while the executed copy's grid holds no aerial run:
    the page still shows the previous benchmark version and must be executed again, not refreshed (its cells need not
    correspond, and its prose would describe runs it does not show)."""
    if not any('on_both(' in c.source for c in source_nb.cells if c.cell_type == 'code'): return False
    summ = res / name / 'summary.json'
    runs = json.loads(summ.read_text()).get('runs', []) if summ.is_file() else []
    return not any(str((r.get('metrics') or {}).get('data_version', '')).startswith('aerial') for r in runs)


def _commit() -> str:
    r = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=ROOT, capture_output=True, text=True)
    return r.stdout.strip()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('names', nargs='*', help='training notebook stems (default: every one with an executed copy)')
    ap.add_argument('--profile', default='cpu')
    ap.add_argument('--check', action='store_true', help='write nothing; exit 1 if any copy is out of date')
    args = ap.parse_args(argv)
    res = ROOT / 'book' / 'results' / args.profile
    names = args.names or sorted(p.stem for p in (ROOT / 'nbs' / 'train').glob('*.ipynb')
                                 if not p.name.startswith(('.', '_')) and (res / p.name).is_file())
    stale, failed, changed, waiting = [], [], [], []
    for name in names:
        src_p, ex_p = ROOT / 'nbs' / 'train' / f'{name}.ipynb', res / f'{name}.ipynb'
        if not ex_p.is_file():
            failed.append(f'{name}: no executed copy at {ex_p.relative_to(ROOT)}'); continue
        ex, src_nb = nbformat.read(ex_p, as_version=4), nbformat.read(src_p, as_version=4)
        if awaits_new_benchmark(name, src_nb, res):
            waiting.append(name); continue
        try:
            new = refreshed(src_nb, ex, args.profile)
        except ValueError as e:
            failed.append(f'{name}: {e}'); continue
        if nbformat.writes(new) == nbformat.writes(ex): continue
        if args.check:
            stale.append(name); continue
        nbformat.write(new, ex_p); changed.append(name)
    if changed:
        prov_p = res / 'provenance.json'
        prov = json.loads(prov_p.read_text()) if prov_p.is_file() else {}
        for name in changed:
            prov.setdefault(name, {})['prose_refreshed'] = {'from': f'nbs/train/{name}.ipynb', 'git_commit': _commit(),
                                                             'tool': 'tools/refresh_pages.py'}
        prov_p.write_text(json.dumps(prov, indent=2) + '\n')
        print('refreshed:', ', '.join(changed))
    if waiting:
        print(f"awaiting execution on benchmark v3 (left as they are): {', '.join(waiting)}")
    for f in failed: print(f'error: {f}', file=sys.stderr)
    if stale:
        print(f"prose out of date in the executed copies of {', '.join(stale)}: run `python tools/refresh_pages.py`",
              file=sys.stderr)
    return 1 if failed or stale else 0


if __name__ == '__main__':
    sys.exit(main())
