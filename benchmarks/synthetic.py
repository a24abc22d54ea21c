"""Cost of one sample of the built-in synthetic benchmark (`ctxseg.synthetic.generate`) at a given size.

Times `--repeats` rounds of `--samples` consecutive samples in this process (one thread: numpy's matrix products
are tiny here) and reports the per-sample minimum, median and maximum over rounds, in milliseconds. The budget
of version 2 is 2 ms per sample at its default size (192 px), a tenth of a cpu training step's share per image.
Run it on an otherwise idle machine; writes JSON (machine, command, git commit) to --out.

    .venv/bin/python benchmarks/synthetic.py --out book/results/cpu/synthetic_bench.json
"""
from __future__ import annotations
import argparse, json, statistics, sys, time
from pathlib import Path

from ctxseg.provenance import git_info, machine_info
from ctxseg.synthetic import DEFAULT_SIZE, SYNTHETIC_VERSION, generate


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--size', type=int, default=DEFAULT_SIZE)
    ap.add_argument('--samples', type=int, default=500)
    ap.add_argument('--repeats', type=int, default=7)
    ap.add_argument('--out', help='write the result as JSON here')
    a = ap.parse_args(argv)
    for i in range(20): generate(i, a.size)                     # warm the caches (interpolation matrices, noise bank)
    per = []
    for r in range(a.repeats):
        t = time.perf_counter()
        for i in range(a.samples): generate(1000 * r + i, a.size)
        per.append((time.perf_counter() - t) / a.samples * 1e3)
    res = {'size': a.size, 'synthetic_version': SYNTHETIC_VERSION, 'samples': a.samples, 'repeats': a.repeats,
           'min_ms': min(per), 'median_ms': statistics.median(per), 'max_ms': max(per), 'budget_ms': 2.0,
           'command': ' '.join(['python', *sys.argv]), **git_info(), **machine_info()}
    print(f"generate at {a.size} px: {res['median_ms']:.2f} ms per sample (median of {a.repeats}; "
          f"min {res['min_ms']:.2f}, max {res['max_ms']:.2f}) on {res['hardware']}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(res, indent=2) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
