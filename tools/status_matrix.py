"""The landing page's status matrix, generated from the repository's state (never typed): for each paper, whether
its theory and module notebooks exist, its cpu grid (complete or not, with the number of runs), its gpu presets,
any committed gpu run, and the protocol's verdicts on every claim its chapter judges, on the mIoU and on one class
or boundaries, each with a link.

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


def all_runs(root: Path, version: str | None = None) -> dict:
    """Every finished cpu run of every committed grid (`book/results/cpu/<grid>` and the kept `v2/<grid>`), each
    (preset, seed) once (the baselines grid's copy first); with `version`, only the runs on that data version, so that
    a chapter's claims are judged against baselines of its own benchmark version."""
    sys.path.insert(0, str(root))
    from ctxseg.grids import run_data_version
    res = root / 'book' / 'results' / 'cpu'
    grids = sorted({p.parent for p in [*res.glob('*/summary.json'), *res.glob('v2/*/summary.json')]})
    grids.sort(key=lambda g: g.name != 'baselines')
    runs, seen = [], set()
    for g in grids:
        for r in (_read(g / 'summary.json') or {}).get('runs', []):
            k = (r['preset'], r['seed'])
            if 'metrics' not in r or k in seen or (version and run_data_version(r['metrics']) != version): continue
            seen.add(k); runs.append(r)
    return {'runs': runs, 'presets': sorted({r['preset'] for r in runs})}



def runs_of(root: Path, versions) -> dict:
    "`all_runs` of each data version of `versions` in one summary (benchmark v3: its two benchmarks' versions)."
    got = [all_runs(root, v) for v in versions]
    return {'runs': [r for a in got for r in a['runs']], 'presets': [p for a in got for p in a['presets']]}

KINDS = ('held', 'refuted', 'reverses', 'held on one benchmark', 'refuted on one benchmark', 'not resolved')


def _kind(v: str) -> str:
    """A verdict's kind: held or refuted (on every benchmark it was judged on), reverses (held on one benchmark,
    refuted on the other), held or refuted on one benchmark only, or not resolved (what remains; bimodal flags aside)."""
    v = v.removesuffix(' (bimodal)')
    if v in ('held', 'refuted'): return v
    if v.startswith('reverses'): return 'reverses'
    if v.startswith('held on'): return 'held on one benchmark'
    if v.startswith('refuted on'): return 'refuted on one benchmark'
    return 'not resolved'


def verdicts(root: Path, summ: dict, claims) -> dict:
    """{'mIoU': counts, 'other': counts} of the chapter's claims, counts {'held', 'refuted', 'not resolved'}: every
    claim and target the committed runs can judge (`expand_claims`), split into the mIoU claims and those on one class
    or on boundaries. A grid on benchmark v3 is judged on both benchmarks (`judge_claims` against the baseline; a claim
    holds only if it holds on both), its per-class and boundary claims on each benchmark's own runs."""
    from ctxseg.grids import run_data_version
    from ctxseg.protocol import compare, expand_claims, judge_claims, claims_on, BENCHMARKS
    out = {'mIoU': dict.fromkeys(KINDS, 0), 'other': dict.fromkeys(KINDS, 0)}
    versions = sorted({run_data_version(r['metrics']) for r in summ['runs'] if 'metrics' in r})
    v3 = any(v.startswith('aerial') for v in versions)
    if v3:
        allr = runs_of(root, versions)
        for j in judge_claims(allr, claims):
            if j['against'] == 'baseline': out['mIoU'][_kind(j['verdicts']['mIoU'])] += 1
        for bench in BENCHMARKS:
            for c in expand_claims(allr, [(n, b, m, [t for t in ts if t is not None]) for n, b, m, ts in claims_on(claims, bench)]):
                out['other'][_kind(compare(allr, c['baseline'], c['method'], c['expect'], c.get('metric', 'mIoU'), cls=c.get('cls'))['verdict'])] += 1
        return out
    allr = all_runs(root, versions[0] if versions else None)
    for c in expand_claims(allr, claims):
        v = compare(allr, c['baseline'], c['method'], c['expect'], c.get('metric', 'mIoU'), cls=c.get('cls'))['verdict']
        out['mIoU' if c.get('metric', 'mIoU') == 'mIoU' and c.get('cls') is None else 'other'][_kind(v)] += 1
    return out


def rows(root: Path = ROOT) -> list[dict]:
    "One dict per paper: the state of each part, and a Markdown cell for it."
    sys.path.insert(0, str(root))
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
        r['verdicts'] = verdicts(root, summ, claims) if r['cpu'] == 'complete' else None
        r['results'] = (root / 'nbs' / f'{rs}.ipynb').is_file()
        out.append(r)
    return out


def markdown(root: Path = ROOT) -> str:
    head = ('| paper | theory | module | cpu results | gpu recipe | gpu run | verdicts on mIoU (cpu) | verdicts on one class or on boundaries (cpu) |\n'
            '| --- | --- | --- | --- | --- | --- | --- | --- |\n')
    lines = []
    for r, (paper, mod, th, mo, tr, rs, page) in zip(rows(root), PAPERS):
        theory = f'{{doc}}`yes </nbs/{th}>`' if r['theory'] else 'planned'
        module = f'{{doc}}`ctxseg.methods.{mod} </nbs/{mo}>`' if r['module'] else 'planned'
        cpu = (f"{{doc}}`{r['cpu']}, {r['cpu_runs']} runs </book/results/cpu/{tr}>`" if r['cpu'] else 'planned')
        gpu_recipe = f"{len(r['gpu_presets'])} presets" if r['gpu_presets'] else 'none'
        gpu_run = f"{r['gpu_runs']} runs" if r['gpu_runs'] else 'not run (no GPU so far)'
        cell = lambda v: (f"{{doc}}`{v['held']} held, {v['refuted']} refuted, "
                          + ''.join(f"{v[k]} {k}, " for k in ('reverses', 'held on one benchmark', 'refuted on one benchmark') if v[k])
                          + f"{v['not resolved']} not resolved </nbs/{rs}>`")
        judged = r['verdicts'] is not None and r['results']
        verdict, other = (cell(r['verdicts']['mIoU']), cell(r['verdicts']['other'])) if judged else ('planned', 'planned')
        lines.append(f"| {r['chapter']} | {theory} | {module} | {cpu} | {gpu_recipe} | {gpu_run} | {verdict} | {other} |")
    return head + '\n'.join(lines) + '\n'


def checked(root: Path = ROOT) -> dict:
    "What the repository has checked and run, counted from its committed records (the landing page's first screen)."
    sys.path.insert(0, str(root))
    from ctxseg.grids import run_data_version
    eq = {}
    for f in sorted((root / 'facts' / 'authors').glob('*/equivalence.json')):
        eq.update({f'{f.parent.name}/{k}': v for k, v in (_read(f) or {}).items()})
    repos = sorted({(_read(root / 'facts' / 'authors' / f'{n}.json') or {}).get('repo', '?') for n in eq})
    rel = [v['max_abs_diff'] / max(v['max_abs_ref'], 1e-30) for v in eq.values()]
    from ctxseg.recipes import recipe_rows, gpu_presets
    fields = [r['status'] for p in gpu_presets() for r in recipe_rows(p)]
    reh = [_read(f) for f in sorted((root / 'book' / 'results' / 'rehearsal').glob('*.json'))]
    gpu = [r for f in (root / 'book' / 'results' / 'gpu').glob('*/summary.json') for r in (_read(f) or {}).get('runs', []) if 'metrics' in r]
    cpu, machines, commits = {}, set(), set()
    res = root / 'book' / 'results' / 'cpu'
    for f in [*res.glob('*/summary.json'), *res.glob('v*/*/summary.json')]:
        summ = _read(f) or {}
        for r in summ.get('runs', []):
            if 'metrics' not in r: continue
            cpu.setdefault(run_data_version(r['metrics']), set()).add((r['preset'], r['seed']))
            prov = _read(f.parent / r['dir'] / 'provenance.json') or {}
            hw = prov.get('hardware') or (prov.get('machine') or {}).get('hardware') or summ.get('hardware')   # older runs: the grid's
            if hw: machines.add(hw.removeprefix('CPU only (').removesuffix(')'))
            if prov.get('git_commit'): commits.add(prov['git_commit'])
    return {'networks': len(eq), 'networks_equal': sum(bool(v.get('equal')) for v in eq.values()), 'repos': repos,
            'max_rel_diff': max(rel) if rel else None, 'gpu_presets': len(gpu_presets()), 'fields': len(fields),
            'fields_equal': fields.count('equal'), 'fields_deliberate': fields.count('deliberate'),
            'fields_not_stated': fields.count('not stated'), 'fields_no_entry': fields.count('no entry'), 'rehearsed': sum(1 for r in reh if r and r.get('ok')),
            'gpu_runs': len(gpu), 'cpu_runs': {v: len(k) for v, k in sorted(cpu.items())},
            'machines': sorted(machines), 'commits': len(commits)}


def checked_markdown(root: Path = ROOT) -> str:
    "The landing page's account of what was checked and what was not, every number counted by `checked`."
    c = checked(Path(root))
    v3 = sum(n for v, n in c['cpu_runs'].items() if v in ('synthetic-v3', 'aerial-v1'))
    old = sum(n for v, n in c['cpu_runs'].items() if v not in ('synthetic-v3', 'aerial-v1'))
    nets = (f"{c['networks_equal']} of {c['networks']} of the authors' networks ({', '.join(c['repos'])}), built from "
            f"their repositories and given the same weights as ours, give the same logits as ctxseg's (largest relative "
            f"difference {c['max_rel_diff']:.0e}, in float64; {{doc}}`/nbs/15_convert`)." if c['networks']
            else "No network of the authors has been compared with ours yet.")
    return (f"* **Checked against the authors' code.** {nets} "
            f"The losses, memories and samplers are tested against loops written to follow the authors' code. Contextrast "
            f"released no code, so nothing of it could be compared.\n"
            f"* **Checked against the authors' recipes.** {c['gpu_presets']} gpu presets, field by field: {c['fields_equal']} of "
            f"{c['fields']} fields equal the authors' configs, {c['fields_deliberate']} differ on purpose (each says why) and "
            f"{c['fields_not_stated']} are not stated by any source"
            + (f", and {c['fields_no_entry']} have no entry yet" if c['fields_no_entry'] else '') + " ({doc}`/nbs/16_recipes`).\n"
            f"* **Not done.** {'No' if not c['gpu_runs'] else c['gpu_runs']} run on a GPU and none on a paper's dataset: "
            f"{c['rehearsed']} gpu presets have taken two full-size training steps on a CPU ({{doc}}`/nbs/17_rehearse`), "
            f"and that is all. None of the papers' numbers is reproduced here.\n"
            f"* **What the evidence is.** {v3} runs on two small procedural benchmarks built for this book, trained on a "
            f"2-core CPU with a ResNet-18 of width 16 ({{doc}}`/nbs/02_synthetic`, {{doc}}`/nbs/02b_aerial`), and {old} runs on "
            f"earlier versions of the first, kept as a record. A verdict here says what a method does at that scale, not on "
            f"Cityscapes.\n"
            f"* **Where the runs come from.** The committed cpu runs were trained on {len(c['machines'])} kind{'s' if len(c['machines']) > 1 else ''} of CPU "
            f"({'; '.join(c['machines'])}) and at {c['commits']} commits of this repository. A run is reused in a later "
            f"comparison when its config and its data are exactly the ones that comparison would train; the check compares "
            f"configs and data, not code, and a run repeats bit for bit only on the kind of CPU it was trained on.\n")


def headline_markdown(root: Path = ROOT) -> str:
    """The verdicts of every grid trained on benchmark v3, in plain words (`ctxseg.protocol.bottom_line`, against the
    baseline and the class-balanced control, on both benchmarks); the chapters not yet trained on it are named."""
    sys.path.insert(0, str(root))
    from ctxseg.configs import BASELINE_CLAIMS
    from ctxseg.grids import load_summary, merge_summaries, run_data_version
    from ctxseg.protocol import judge_claims, bottom_line
    res = Path(root) / 'book' / 'results' / 'cpu'
    grids = {}
    for name in ('baselines', *(t for *_, t, _, _ in PAPERS)):
        s = load_summary(res / name) if (res / name / 'summary.json').is_file() else None
        if s and any(run_data_version(r['metrics']) == 'aerial-v1' for r in s['runs'] if 'metrics' in r): grids[name] = s
    if 'baselines' not in grids: return 'No grid has been trained on benchmark v3 yet.\n'
    everything = merge_summaries(*grids.values())
    out, waiting = [], []
    for (paper, mod, *_), tr in [(('The baselines', None), 'baselines'), *((p, p[4]) for p in PAPERS)]:
        if tr not in grids: waiting.append(paper); continue
        claims = BASELINE_CLAIMS if mod is None else importlib.import_module(f'ctxseg.presets.{mod}').CPU_CLAIMS
        out.append(f"**{paper}** ({{doc}}`its grid </book/results/cpu/{tr}>`):\n\n" + bottom_line(judge_claims(everything, claims)))
    if waiting: out.append('Still judged on version 2 of the first benchmark only: ' + ', '.join(waiting) + '.')
    return '\n\n'.join(out) + '\n'


def write(root: Path = ROOT) -> Path:
    "Write book/_generated/status.md and checked.md (git-ignored; tools/build_book.py calls this before every build)."
    gen = Path(root) / 'book' / '_generated'
    gen.mkdir(parents=True, exist_ok=True)
    for name, text in (('status.md', markdown(Path(root))), ('checked.md', checked_markdown(Path(root))),
                       ('headline.md', headline_markdown(Path(root)))):
        p = gen / name
        if not p.is_file() or p.read_text() != text: p.write_text(text)
    return gen / 'status.md'


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
