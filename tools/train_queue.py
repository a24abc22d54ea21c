"""Train the cpu grids of several chapters one after another, until a deadline, so that a grid too long for one
working session is finished over several.

    python tools/train_queue.py contextrast mcibi --until 16:30 [--runs /path/to/runs/cpu] [--stage book/results/cpu/v3/in_progress]

For each chapter it reads the cpu defaults of its training notebook (`nbs/train/<name>.py`, the cell that defines
`PROFILE_DEFAULTS`), restores the finished runs staged by earlier sessions, adopts the rows that other grids already
trained (`adopt_runs`, from `<runs>/baselines` and `<runs>/pixel_contrast`, which it first restores from their
committed grids), and trains the rest with `train_grid` within the time left. Every run that finishes is copied to
the stage folder (without checkpoint or TensorBoard events), which is committed, so that the next session reuses it:
`train_grid` reuses a run whose config, data fingerprint and metrics are there. The executed training page
(`ctxseg run-notebooks --profile cpu <name>`) then finds every run finished and trains nothing.

A name of `MORE_SEEDS` (e.g. `mcibi_seeds`) trains more seeds of the rows whose five-seed verdicts are flagged
bimodal, into its own grid (`<runs>/<name>`, committed as `book/results/cpu/<name>`); rows that another such grid
already trained on those seeds (DeepLabV3's aerial seeds 5-9 of `pixel_contrast_seeds`) are adopted, not retrained.

Run it from a worktree at a clean commit (`PYTHONPATH=<worktree>`), so that the runs record that commit and editing
the checkout does not change the code under a running grid.
"""
import argparse, datetime, re, shutil, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEEP = ('config.json', 'data.json', 'log.jsonl', 'metrics.json', 'provenance.json')   # what a reused run needs


# Seeds 5-9 of the rows a v3 verdict flags bimodal (the protocol asks for ten seeds there): {grid: (chapter, presets)}.
# The results page of the chapter reads the grid beside its five seeds (`book/results/cpu/<grid>`).
MORE_SEEDS = {
    'pixel_contrast_seeds': ('pixel_contrast', ['aerial_aspp', 'aerial_aspp_pixcon_batch']),
    # MCIBI against DeepLabV3 (aerial) and against the control (both benchmarks), MCIBI++ against MCIBI (aerial)
    'mcibi_seeds': ('mcibi', ['aerial_aspp', 'aerial_mcibi', 'aerial_mcibipp', 'aerial_aspp_balanced',
                              'synthetic_aspp_balanced', 'synthetic_mcibi']),
    # Contextrast on the synthetic benchmark, where CCL alone and CCL + BANE collapse car and boat on seed 0: each row
    # against DeepLabV3, its control and ContrastiveSeg's loss, and the samplers against each other
    'contextrast_seeds': ('contextrast', ['synthetic_aspp', 'synthetic_aspp_balanced', 'synthetic_aspp_pixcon_batch',
                                          'synthetic_aspp_ccl', 'synthetic_aspp_contextrast', 'synthetic_aspp_ccl_semihard']),
}
MORE_SEED_LIST = [5, 6, 7, 8, 9]


def cpu_defaults(name: str, root: Path = ROOT) -> dict:
    "The cpu entry of `PROFILE_DEFAULTS` in the training notebook `nbs/train/<name>.py` (its defining cell, executed)."
    if name in MORE_SEEDS: return {'presets': MORE_SEEDS[name][1], 'seeds': MORE_SEED_LIST, 'overrides': []}
    src = (root / 'nbs' / 'train' / f'{name}.py').read_text()
    cell = next((c for c in re.split(r'^# %%.*$', src, flags=re.M) if 'PROFILE_DEFAULTS = {' in c), None)
    if cell is None: raise SystemExit(f'{name}: no PROFILE_DEFAULTS cell in nbs/train/{name}.py')
    ns = {}
    exec(cell, ns)
    return ns['PROFILE_DEFAULTS']['cpu']


def copy_run(src: Path, dst: Path):
    "The files of a finished run that a later `train_grid` needs to reuse it, copied from `src` to `dst`."
    dst.mkdir(parents=True, exist_ok=True)
    for f in KEEP:
        if (src / f).is_file(): shutil.copy2(src / f, dst / f)


def stage(out: Path, staged: Path, skip=()) -> list[str]:
    """Copy to `staged` every finished run of the grid folder `out` that is not there yet (or changed), except the runs
    `skip` ('preset/seedK': those adopted from other grids, committed there); their names."""
    done = []
    for m in sorted(out.glob('*/seed*/metrics.json')):
        run, rel = m.parent, m.parent.relative_to(out)
        if str(rel) in skip: continue
        if (staged / rel / 'metrics.json').is_file() and (staged / rel / 'metrics.json').read_bytes() == m.read_bytes(): continue
        copy_run(run, staged / rel); done.append(str(rel))
    return done


def restore(staged: Path, out: Path) -> list[str]:
    "Copy back into the grid folder `out` the staged runs it does not hold; their names."
    back = []
    for m in sorted(staged.glob('*/seed*/metrics.json')):
        rel = m.parent.relative_to(staged)
        if (out / rel / 'metrics.json').is_file(): continue
        if (out / rel).exists(): shutil.rmtree(out / rel)
        copy_run(m.parent, out / rel); back.append(str(rel))
    return back


def deadline(s: str) -> float:
    "Epoch seconds of 'HH:MM' today (local time), or of a number of epoch seconds."
    if re.fullmatch(r'\d+(\.\d+)?', s): return float(s)
    h, m = map(int, s.split(':'))
    return datetime.datetime.now().replace(hour=h, minute=m, second=0, microsecond=0).timestamp()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('names', nargs='+', help='training notebooks, in order (contextrast, mcibi, region_contrast, gald, ...)')
    ap.add_argument('--until', required=True, help="stop starting work at HH:MM (a run in progress pauses there and resumes next time)")
    ap.add_argument('--runs', default=str(ROOT / 'runs' / 'cpu'), help='the folder of the cpu grids')
    ap.add_argument('--stage', default=str(ROOT / 'book' / 'results' / 'cpu' / 'v3' / 'in_progress'),
                    help='where finished runs are copied (committed)')
    ap.add_argument('--first-seed-last', action=argparse.BooleanOptionalAction, default=True,
                    help='train the first seed of every preset after the others (default: yes)')
    a = ap.parse_args(argv)
    from ctxseg.chapter import setup, adopt_runs
    from ctxseg.grids import train_grid
    runs, stage_root, end = Path(a.runs), Path(a.stage), deadline(a.until)
    sources = ('baselines', 'pixel_contrast', *MORE_SEEDS)          # the rows other chapters adopt
    for grid in sources:
        committed = ROOT / 'book' / 'results' / 'cpu' / grid
        if (committed / 'summary.json').is_file():
            print(f'{grid}: restored {len(restore(committed, runs / grid))} runs from {committed.relative_to(ROOT)}', flush=True)
    for name in a.names:
        left = end - time.time()
        if left <= 60: print(f'{name}: not started (deadline)', flush=True); break
        d = cpu_defaults(name)
        out, staged = runs / name, stage_root / name
        ch = setup(MORE_SEEDS[name][0] if name in MORE_SEEDS else name, {'cpu': d}, 'cpu', out_dir=out, time_budget=left,
                   command=f'tools/train_queue.py {" ".join(a.names)}' + ('' if name in MORE_SEEDS else f' (then ctxseg run-notebooks --profile cpu {name})'))
        print(f'{name}: restored {len(restore(staged, out))} staged runs', flush=True)
        others = [g for g in sources if g != name]
        for grid in others: adopt_runs(ch, runs / grid, ch.presets)
        adopted = {f'{p}/seed{k}' for grid in others for p in ch.presets for k in ch.seeds
                   if (runs / grid / p / f'seed{k}' / 'metrics.json').is_file()}   # committed there

        def log(msg, out=out, staged=staged, skip=adopted):
            print(time.strftime('%H:%M:%S'), msg, flush=True)
            for rel in stage(out, staged, skip): print(f'  staged {rel}', flush=True)

        # The first seed last: its checkpoints feed the page's pictures (overlays, PCA), and checkpoints are not
        # committed, so a grid spread over several sessions keeps them only for the runs of its last session.
        order = [[s for s in ch.seeds if s != min(ch.seeds)], [min(ch.seeds)]] if a.first_seed_last else [ch.seeds]
        for seeds in order:
            s = train_grid(ch.presets, seeds, ch.overrides, out, time_budget=max(end - time.time(), 1e-3), context=ch.context, log=log)
            if s['status'] != 'complete': break
        stage(out, staged, adopted)
        n = sum((out / p / f'seed{k}' / 'metrics.json').is_file() for p in ch.presets for k in ch.seeds)
        print(f'{name}: {s["status"]} ({n}/{len(ch.presets) * len(ch.seeds)} runs finished)', flush=True)
        if name in MORE_SEEDS and s['status'] == 'complete':          # no training page: the grid itself is what is committed
            grid = ROOT / 'book' / 'results' / 'cpu' / name
            for m in sorted(out.glob('*/seed*/metrics.json')): copy_run(m.parent, grid / m.parent.relative_to(out))
            shutil.copy2(out / 'summary.json', grid / 'summary.json')
            print(f'{name}: the grid copied to {grid.relative_to(ROOT)} (commit it, and remove {staged})', flush=True)
        if s['status'] != 'complete': break


if __name__ == '__main__':
    sys.exit(main())
