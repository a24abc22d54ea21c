"""What keeping the drawn scenes saves: training images/s of cpu presets on the built-in benchmarks with the scene
cache of `ctxseg.synthetic.SyntheticSegmentation` (`CACHE_BYTES`) on and off.

Each measurement trains `--iters` iterations of a preset in a fresh process, through `ctxseg.engine.train`, with the
cache on or off (off: `CACHE_BYTES = 0` set in that process before training), alternating on, off, on, off over
`--rounds` rounds; the figure is the median of the images/s the engine logs over its training iterations (no
evaluation inside it). A full cpu run draws each training image 5 (synthetic) to 9 (aerial) times; a short run over
the full 2000 images would draw each once and measure nothing, so the training set is cut to `--num-train` images
(240: each drawn 5 times in 150 iterations of batch 8). The script also checks that the two settings log the same losses to the last bit. Run it
alone: on two cores a second heavy process makes every time meaningless. Writes JSON (machine, command, git commit)
to --out.

    .venv/bin/python benchmarks/procedural_cache.py --out book/results/cpu/procedural_cache_bench.json
"""
from __future__ import annotations
import argparse, json, statistics, subprocess, sys, tempfile
from pathlib import Path

from ctxseg.provenance import git_info, machine_info

CHILD = """
import sys
from ctxseg import presets as P, synthetic
from ctxseg.engine import train
preset, iters, cache, out = sys.argv[1], int(sys.argv[2]), sys.argv[3] == 'on', sys.argv[4]
if not cache: synthetic.CACHE_BYTES = 0
cfg = P.get(preset, [f'train.iters={iters}', 'train.log_interval=10', 'data.num_val=8', f'data.num_train={sys.argv[5]}'])
train(cfg, out, progress=False)
"""


def one(preset: str, iters: int, cache: bool, tmp: Path, num_train: int) -> dict:
    out = tmp / f"{preset}_{'on' if cache else 'off'}_{len(list(tmp.iterdir()))}"
    r = subprocess.run([sys.executable, '-c', CHILD, preset, str(iters), 'on' if cache else 'off', str(out), str(num_train)],
                       capture_output=True, text=True)
    if r.returncode: raise SystemExit(f'{preset} (cache {cache}) failed:\n{r.stderr[-2000:]}')
    log = [json.loads(l) for l in (out / 'log.jsonl').read_text().splitlines()]
    log = [l for l in log if 'images_per_s' in l][1:]            # the first window holds the warm-up
    return {'images_per_s': statistics.median(l['images_per_s'] for l in log), 'losses': [l['loss'] for l in log]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--presets', nargs='+', default=['synthetic_aspp', 'aerial_aspp'])
    ap.add_argument('--iters', type=int, default=150)
    ap.add_argument('--rounds', type=int, default=1)
    ap.add_argument('--num-train', type=int, default=240,
                    help='training images: 240 at batch 8 over 150 iterations draws each 5 times, as a full cpu run does')
    ap.add_argument('--out', help='write the result as JSON here')
    a = ap.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as t:
        for p in a.presets:
            got = {True: [], False: []}
            for _ in range(a.rounds):
                for cache in (True, False): got[cache].append(one(p, a.iters, cache, Path(t), a.num_train))
            on, off = (statistics.median(g['images_per_s'] for g in got[c]) for c in (True, False))
            same = all(g['losses'] == got[True][0]['losses'] for c in (True, False) for g in got[c])
            rows.append({'preset': p, 'iters': a.iters, 'num_train': a.num_train, 'rounds': a.rounds, 'images_per_s_cache_on': on,
                         'images_per_s_cache_off': off, 'speedup': on / off, 'same_losses': same})
            print(f"{p}: {off:.1f} images/s drawing every scene, {on:.1f} keeping them ({on / off:.2f}×); "
                  f"losses {'identical' if same else 'DIFFER'}", flush=True)
    res = {'rows': rows, 'command': ' '.join(['python', *sys.argv]), **git_info(), **machine_info()}
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=2) + '\n')
    return 0 if all(r['same_losses'] for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
