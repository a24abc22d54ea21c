"""Retrain committed runs from their own config.json in a fresh process and compare them bit for bit with what was
committed: every number of metrics.json (its wall time aside) and every logged training line of log.jsonl (losses, terms, lr, gradient norm, statistics; timings aside). The check behind "the layout changed,
the numbers did not" (issue 30).

    python tools/reproduce.py book/results/cpu/baselines/synthetic_fcn/seed0 [RUN ...] [--out FILE.json] [--keep DIR]

Each run trains for its full schedule (minutes on CPU); one at a time, never beside another heavy job.
"""
import argparse, json, math, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _same(a, b) -> bool:
    "Equal as recorded: the same JSON value, NaN equal to NaN."
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b): return True
    if isinstance(a, dict) and isinstance(b, dict): return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list): return len(a) == len(b) and all(map(_same, a, b))
    return a == b


TIMING = ('wall_time_s',)        # how long the run took: a measurement of the machine, not of the run


def _losses(run: Path) -> list:
    "Every logged training line without its timings: losses, terms, learning rate, gradient norm, method statistics."
    lines = [json.loads(l) for l in (run / 'log.jsonl').read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ('time_per_iter', 'images_per_s')} for r in lines if not r.get('eval')]


def reproduce(run: Path, work: Path) -> dict:
    "Train `run`'s config into `work` in a fresh `ctxseg train` process; compare metrics and logged losses."
    from ctxseg import configs as C
    cfg = C.load_json(run / 'config.json')
    C.save_json(cfg, work / 'config_in.json')
    t = time.time()
    code = ("import sys; from ctxseg import configs as C; from ctxseg.engine import train; "
            f"train(C.load_json({str(work / 'config_in.json')!r}), {str(work / 'run')!r}, progress=False)")
    p = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if p.returncode: raise RuntimeError(f'{run}: training failed:\n{p.stderr[-2000:]}')
    ours, theirs = json.loads((work / 'run' / 'metrics.json').read_text()), json.loads((run / 'metrics.json').read_text())
    diff = sorted(k for k in theirs.keys() | ours.keys() if k not in TIMING and not _same(theirs.get(k), ours.get(k)))
    la, lb = _losses(run), _losses(work / 'run')
    first = next((a['iter'] for a, b in zip(la, lb) if not _same(a, b)), None)
    prov = json.loads((run / 'provenance.json').read_text())
    return {'run': str(run.relative_to(ROOT)), 'preset': cfg.name, 'committed_at': prov.get('git_commit', '')[:10],
            'mIoU': theirs['mIoU'], 'metrics_equal': not diff, 'metrics_that_differ': diff,
            'log_lines': len(la), 'losses_equal': len(la) == len(lb) and first is None, 'first_differing_iter': first,
            'seconds': round(time.time() - t, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('runs', nargs='+'); ap.add_argument('--out')
    ap.add_argument('--against', help='a --keep folder of another commit: compare each retrained run with that one as well')
    ap.add_argument('--keep', help='keep the retrained runs in this folder (one subfolder per run), e.g. to compare two commits')
    a = ap.parse_args(argv)
    from ctxseg.provenance import result_header
    rows = []
    for r in a.runs:
        with tempfile.TemporaryDirectory() as d:
            row = reproduce(Path(r).resolve(), Path(d)); rows.append(row)
            other = Path(a.against or '') / row['run'].replace('/', '__')
            if a.against and other.is_dir():
                m1, m2 = (json.loads((q / 'metrics.json').read_text()) for q in (Path(d) / 'run', other))
                row['against'] = json.loads((other / 'provenance.json').read_text()).get('git_commit', '')[:10]
                row['against_equal'] = (all(_same(m1.get(k), m2.get(k)) for k in m1.keys() | m2.keys() if k not in TIMING)
                                        and _losses(Path(d) / 'run') == _losses(other))
                print(f"{row['run']}: the same run retrained at {row['against']}: {'identical' if row['against_equal'] else 'DIFFERENT'}", flush=True)
            if a.keep:
                import shutil
                dest = Path(a.keep) / row['run'].replace('/', '__')
                shutil.rmtree(dest, ignore_errors=True); shutil.copytree(Path(d) / 'run', dest)
        print(f"{row['run']}: metrics {'identical' if row['metrics_equal'] else 'DIFFER: ' + ', '.join(row['metrics_that_differ'])}, "
              f"losses {'identical' if row['losses_equal'] else 'differ from iteration ' + str(row['first_differing_iter'])} "
              f"({row['log_lines']} log lines, {row['seconds']:.0f} s)", flush=True)
    if a.out:
        from ctxseg.engine import atomic_write_json
        atomic_write_json(Path(a.out), {**result_header('tools/reproduce.py', argv if argv is not None else sys.argv[1:]), 'runs': rows})
    return 0 if all(r['metrics_equal'] and r['losses_equal'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
