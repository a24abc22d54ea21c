"""Rehearse gpu presets on the CPU (`ctxseg.rehearse`): a dataset-layout fixture at the dataset's resolution, two
optimiser steps at the preset's crop and per-GPU batch in float32 and in bf16 autocast with every loss term on, FLOPs,
peak memory, a GPU memory estimate, and the memories through DDP on two gloo processes. One JSON per preset.

    python benchmarks/rehearse.py --all                       # every gpu preset -> book/results/rehearsal/<preset>.json
    python benchmarks/rehearse.py --all --skip-done           # resume: keep the records already written (same version)
    python benchmarks/rehearse.py cityscapes_regcon_r50 --reduced --out /tmp/rehearsal

A preset runs in fresh processes (one per precision), one after the other: never start two of these at once.
"""
import argparse, json, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    from ctxseg.rehearse import rehearse, summary, REHEARSAL_VERSION
    from ctxseg.recipes import gpu_presets
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('presets', nargs='*'); ap.add_argument('--all', action='store_true', help='every gpu preset')
    ap.add_argument('--reduced', action='store_true'); ap.add_argument('--no-ddp', action='store_true')
    ap.add_argument('--skip-done', action='store_true', help='keep records of this version that exist')
    ap.add_argument('--out', default=str(ROOT / 'book' / 'results' / 'rehearsal'))
    a = ap.parse_args(argv)
    presets = gpu_presets() if a.all else a.presets
    if not presets: ap.error('name presets or pass --all')
    out, failed, t0 = Path(a.out), [], time.time()
    out.mkdir(parents=True, exist_ok=True)
    for i, p in enumerate(presets):
        f = out / f'{p}.json'
        if a.skip_done and f.is_file() and json.loads(f.read_text()).get('version') == REHEARSAL_VERSION:
            print(f'[{i + 1}/{len(presets)}] {p}: kept {f}'); continue
        print(f'[{i + 1}/{len(presets)}] {p} ({(time.time() - t0) / 60:.0f} min so far)', flush=True)
        try:
            rec = rehearse(p, reduced=a.reduced, ddp=not a.no_ddp, out=f, progress=lambda s: print('   ', s, flush=True))
            print(summary(rec), flush=True)
        except Exception as e:                         # a crash (e.g. out of memory) is a result too: record it, go on
            import traceback
            from ctxseg.provenance import result_header
            from ctxseg.engine import atomic_write_json
            rec = {'preset': p, 'version': REHEARSAL_VERSION, 'ok': False, 'error': f'{type(e).__name__}: {e}'[:2000],
                   'traceback': traceback.format_exc()[-4000:], **result_header('benchmarks/rehearse.py', [p])}
            atomic_write_json(f, rec); print(f'{p}: FAILED: {rec["error"]}', flush=True)
        if not rec['ok']: failed.append(p)
    print(f'{len(presets)} presets in {(time.time() - t0) / 60:.0f} min; failed: {failed or "none"}')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
