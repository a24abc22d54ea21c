"""Cost beside accuracy: parameters, training-step time, peak memory and inference latency of cpu presets, each
measured in a fresh process with `ctxseg.bench.benchmark` at the preset's own image size and batch, against the
same baseline.

    python benchmarks/method_cost.py gald                      # the GALD cpu rows and their baselines, a table
    python benchmarks/method_cost.py pixel_contrast --warmup 40 --out book/results/cpu/pixel_contrast_cost.json
    python benchmarks/method_cost.py synthetic_aspp synthetic_gald_aspp_ldv2 --iters 20

A group name (`gald`, `pixel_contrast`, `mcibi`, `region_contrast`, `contextrast`) stands for the presets of that training notebook's cpu grid and their
baseline; `comparison` for the rows of the Comparison chapter:

    python benchmarks/method_cost.py comparison --warmup 40 --out book/results/cpu/comparison_cost.json

Run it alone: on two cores a second heavy process makes every time meaningless.
"""
from __future__ import annotations
import argparse, json, sys, time
from pathlib import Path
from ctxseg import presets as P
from ctxseg.bench import benchmark_isolated, format_table

ROOT = Path(__file__).resolve().parents[1]
GROUPS = {
    'gald': ['synthetic_fcn', 'synthetic_aspp', 'synthetic_gald_aspp_ldnone', 'synthetic_gald_aspp_ldv1',
             'synthetic_gald_aspp_ldv2', 'synthetic_gald_cgnl', 'synthetic_gald_cgnl_zi', 'synthetic_gald_aspp_ldnone_compact'],
    'pixel_contrast': ['synthetic_aspp', 'synthetic_aspp_pixcon_batch', 'synthetic_aspp_pixcon'],
    'mcibi': ['synthetic_aspp', 'synthetic_mcibi', 'synthetic_mcibipp'],
    'region_contrast': ['synthetic_aspp', 'synthetic_aspp_regcon', 'synthetic_aspp_regcon_authors'],
    'contextrast': ['synthetic_aspp', 'synthetic_aspp_ccl', 'synthetic_aspp_ccl_semihard', 'synthetic_aspp_contextrast'],
    # the rows of the Comparison chapter (nbs/90_comparison), measured in one session on one machine
    'comparison': ['synthetic_fcn', 'synthetic_aspp', 'synthetic_psp', 'synthetic_ocr', 'synthetic_gald_aspp_ldv2',
                   'synthetic_gald_cgnl', 'synthetic_mcibi', 'synthetic_mcibipp', 'synthetic_aspp_pixcon_batch',
                   'synthetic_aspp_pixcon', 'synthetic_aspp_regcon', 'synthetic_aspp_regcon_authors', 'synthetic_aspp_ccl',
                   'synthetic_aspp_ccl_semihard', 'synthetic_aspp_contextrast', 'synthetic_mcibipp_pixcon_batch'],
}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('presets', nargs='+', help=f'preset names, or a group: {", ".join(GROUPS)}')
    ap.add_argument('--iters', type=int, default=10, help='timed training steps per preset (after the warm-up steps)')
    ap.add_argument('--warmup', type=int, default=3,
                    help='untimed training steps first; give a memory method enough to fill its queues (pixel contrast: 40)')
    ap.add_argument('--infer-iters', type=int, default=20)
    ap.add_argument('--out', help='write the results as JSON here (default: print only)')
    a = ap.parse_args(argv)
    names = [p for x in a.presets for p in GROUPS.get(x, [x])]
    unknown = [p for p in names if p not in P.names()]
    if unknown:
        print(f'method_cost: unknown preset(s) {unknown}; see ctxseg.P.names()', file=sys.stderr); return 2
    rows = []
    for p in names:
        cfg = P.get(p)
        if cfg.data.dataset != 'synthetic':
            print(f'method_cost: {p} is not a cpu preset (dataset {cfg.data.dataset})', file=sys.stderr); return 2
        r = benchmark_isolated(cfg, size=(cfg.data.size, cfg.data.size), batch=cfg.data.batch_size, iters=a.iters,
                               warmup=a.warmup, infer_iters=a.infer_iters, num_classes=8, device='cpu')
        rows.append(r)
        print(f"{p}: step {r['train_step_ms']:.0f} ms, inference {r['infer_latency_ms']:.1f} ms", flush=True)
    print(format_table(rows))
    if a.out:
        from ctxseg.provenance import result_header
        from ctxseg.engine import atomic_write_json
        atomic_write_json(a.out, {**result_header('benchmarks/method_cost.py', argv, ROOT), 'iters': a.iters, 'warmup': a.warmup,
                                  'infer_iters': a.infer_iters, 'rows': rows})
        print('wrote', a.out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
