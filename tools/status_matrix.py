"""The landing page's status matrix, generated from the repository's state (never typed): for each paper, whether
its theory and module notebooks exist, its cpu grid (complete or not, with the number of runs), its gpu presets,
any committed gpu run, and the protocol's verdicts on its mIoU claims, each with a link.

    .venv/bin/python tools/status_matrix.py            # prints the Markdown table
    .venv/bin/python tools/status_matrix.py --write    # writes book/_generated/status.md (tools/build_book.py does this)

book/intro.md includes the written file. The verdicts are recomputed here from the committed runs with
`ctxseg.protocol.compare`, the same call the results pages make.
"""
from __future__ import annotations
import argparse, importlib, json, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# (paper, module under ctxseg.methods, theory notebook, module notebook, training notebook, results notebook, chapter page)
PAPERS = [
    ('MCIBI / MCIBI++', 'mcibi', '50_mcibi_theory', '51_mcibi_module', 'mcibi', '53_mcibi_results', 'mcibi'),
    ('RegionContrast', 'region_contrast', '60_region_contrast_theory', '61_region_contrast_module', 'region_contrast',
     '63_region_contrast_results', 'region_contrast'),
    ('Pixel contrast', 'pixel_contrast', '31_pixel_contrast_theory', '32_pixel_contrast_module', 'pixel_contrast',
     '34_pixel_contrast_results', 'pixel_contrast'),
    ('GALD', 'gald', '40_gald_theory', '41_gald_module', 'gald', '43_gald_results', 'gald'),
    ('Contextrast', 'contextrast', '70_contextrast_theory', '71_contextrast_module', 'contextrast',
     '73_contextrast_results', 'contextrast'),
]


def _read(p: Path):
    try: return json.loads(p.read_text())
    except (OSError, ValueError): return None


def all_runs(root: Path) -> dict:
    "Every finished cpu run of every committed grid, each (preset, seed) once (the baselines grid's copy first)."
    res = root / 'book' / 'results' / 'cpu'
    grids = sorted(p.parent for p in res.glob('*/summary.json'))
    grids.sort(key=lambda g: g.name != 'baselines')
    runs, seen = [], set()
    for g in grids:
        for r in (_read(g / 'summary.json') or {}).get('runs', []):
            k = (r['preset'], r['seed'])
            if 'metrics' in r and k not in seen: seen.add(k); runs.append(r)
    return {'runs': runs, 'presets': sorted({r['preset'] for r in runs})}


def rows(root: Path = ROOT) -> list[dict]:
    "One dict per paper: the state of each part, and a Markdown cell for it."
    sys.path.insert(0, str(root))
    from ctxseg.protocol import compare
    allr = all_runs(root)
    out = []
    for paper, mod, th, mo, tr, rs, page in PAPERS:
        r = {'paper': paper, 'chapter': f'{{doc}}`{paper} </book/papers/{page}>`'}
        r['theory'] = (root / 'nbs' / f'{th}.ipynb').is_file()
        r['module'] = (root / 'ctxseg' / 'methods' / f'{mod}.py').is_file()
        summ = _read(root / 'book' / 'results' / 'cpu' / tr / 'summary.json')
        r['cpu'] = summ['status'] if summ else None
        r['cpu_runs'] = sum('metrics' in x for x in summ['runs']) if summ else 0
        presets, claims = {}, []
        if r['module']:
            m = importlib.import_module(f'ctxseg.presets.{mod}')   # the chain's presets and claims (nbs/x2_<paper>_presets)
            presets, claims = m.PRESETS, m.CPU_CLAIMS
        r['gpu_presets'] = sorted(n for n, f in presets.items() if f().profile == 'gpu')
        gpu = _read(root / 'book' / 'results' / 'gpu' / tr / 'summary.json')
        r['gpu_runs'] = sum('metrics' in x for x in gpu['runs']) if gpu else 0
        verdicts = {'held': 0, 'refuted': 0, 'not resolved': 0}
        if r['cpu'] == 'complete':
            for claim, base, meth, targets in claims:
                if None not in targets: continue
                v = compare(allr, base, meth)['verdict']
                verdicts['held' if v == 'held' else 'refuted' if v == 'refuted' else 'not resolved'] += 1
        r['verdicts'] = verdicts
        r['results'] = (root / 'nbs' / f'{rs}.ipynb').is_file()
        out.append(r)
    return out


def markdown(root: Path = ROOT) -> str:
    head = ('| paper | theory | module | cpu results (benchmark v2) | gpu recipe | gpu run | verdicts on mIoU (cpu) |\n'
            '| --- | --- | --- | --- | --- | --- | --- |\n')
    lines = []
    for r, (paper, mod, th, mo, tr, rs, page) in zip(rows(root), PAPERS):
        theory = f'{{doc}}`yes </nbs/{th}>`' if r['theory'] else 'planned'
        module = f'{{doc}}`ctxseg.methods.{mod} </nbs/{mo}>`' if r['module'] else 'planned'
        cpu = (f"{{doc}}`{r['cpu']}, {r['cpu_runs']} runs </book/results/cpu/{tr}>`" if r['cpu'] else 'planned')
        gpu_recipe = f"{len(r['gpu_presets'])} presets" if r['gpu_presets'] else 'none'
        gpu_run = f"{r['gpu_runs']} runs" if r['gpu_runs'] else 'not run (no GPU so far)'
        v = r['verdicts']
        verdict = (f"{{doc}}`{v['held']} held, {v['refuted']} refuted, {v['not resolved']} not resolved </nbs/{rs}>`"
                   if r['cpu'] == 'complete' and r['results'] else 'planned')
        lines.append(f"| {r['chapter']} | {theory} | {module} | {cpu} | {gpu_recipe} | {gpu_run} | {verdict} |")
    return head + '\n'.join(lines) + '\n'


def write(root: Path = ROOT) -> Path:
    "Write book/_generated/status.md (git-ignored; tools/build_book.py calls this before every build)."
    p = Path(root) / 'book' / '_generated' / 'status.md'
    p.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(Path(root))
    if not p.is_file() or p.read_text() != text: p.write_text(text)
    return p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--write', action='store_true', help='write book/_generated/status.md instead of printing')
    ap.add_argument('--root', type=Path, default=ROOT)
    a = ap.parse_args(argv)
    if a.write: print('wrote', write(a.root))
    else: print(markdown(a.root), end='')
    return 0


if __name__ == '__main__':
    sys.exit(main())
