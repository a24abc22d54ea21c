"""The page "Which method, when?", generated from the repository's state (never typed): for each method of the five
papers, what it changes, what it costs in training and at inference (`book/results/cpu/comparison_cost.json`), its
verdicts on this book's benchmarks (recomputed from the committed runs with the protocol, as the results pages do),
the classes where it helped or hurt, how sure the verdict is, and the published figures (its paper's, its authors' release's or a third party's, quoted with the source).

    .venv/bin/python tools/which_method.py            # prints the Markdown
    .venv/bin/python tools/which_method.py --write    # writes book/_generated/which_method.md (tools/build_book.py does this)

A chapter whose committed grid was trained on benchmark v3 is judged on both of its benchmarks, against the baseline
and against the class-balanced control (`ctxseg.protocol.judge_claims`); a chapter still on version 2 of the first
benchmark is judged there and says so. The page therefore changes when a verdict changes, with no edit.
"""
from __future__ import annotations
import argparse, functools, importlib.util, math, sys
from typing import NamedTuple
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def _status_matrix():
    spec = importlib.util.spec_from_file_location('status_matrix', Path(__file__).with_name('status_matrix.py'))
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    return mod


class Method(NamedTuple):
    name: str         # as the page names it
    chapter: str      # the training notebook's grid under book/results/cpu/, and the chain's results notebook
    results: str
    baseline: str     # synthetic preset names; the aerial rows are the same names with the benchmark's prefix
    row: str
    changes: str      # what the method changes, in one sentence
    paper: str        # what its paper or its authors report, quoted with the source


METHODS = [
    Method('In-batch pixel contrast (the authors\' released recipe)', 'pixel_contrast', '34_pixel_contrast_results',
           'synthetic_aspp', 'synthetic_aspp_pixcon_batch',
           'a training loss that pulls the embeddings of pixels of one class together and pushes other classes\' apart, '
           'across the images of the batch; its projection head is dropped after training',
           'DeepLabV3 (ResNet-101) 72.75 → 77.67 and HRNet-W48 79.27 → 80.18 mIoU on Cityscapes val, 40k iterations '
           '(tfzhou/ContrastiveSeg `README.md`)'),
    Method('Pixel contrast with memories (the paper\'s Sec. 3.3)', 'pixel_contrast', '34_pixel_contrast_results',
           'synthetic_aspp', 'synthetic_aspp_pixcon',
           'the same loss, with anchors contrasted against pixel and region memories filled from past batches, and '
           'semi-hard mining of the pairs',
           'the extended paper (PiCo) reports +1.2 / +1.1 / +0.8 mIoU over DeepLabV3, HRNetV2 and OCRNet on Cityscapes val, '
           '80k iterations ({cite:p}`wang2021pixelcontrast`, extended version, results on Cityscapes, Table V)'),
    Method('MCIBI', 'mcibi', '53_mcibi_results', 'synthetic_aspp', 'synthetic_mcibi',
           'a memory of one feature per class over the whole dataset, read out with the pixel\'s class probabilities and '
           'fused into every pixel\'s feature; kept at inference',
           'DeepLabV3 43.19 → 44.39 mIoU (R-50-D8) and 45.16 → 45.66 (R-101-D8) on ADE20K val, single runs of one '
           'recipe in the authors\' toolbox (SegmentationBLWX/sssegmentation `docs/modelzoo/deeplabv3/README.md` and '
           '`docs/modelzoo/mcibi/README.md`)'),
    Method('MCIBI++', 'mcibi', '53_mcibi_results', 'synthetic_aspp', 'synthetic_mcibipp',
           'MCIBI with a distribution per class in the memory and a second decoder stage; kept at inference',
           'DeepLabV3 (R-50-D8) 43.19 → 44.85 mIoU on ADE20K val and 79.62 → 80.72 on Cityscapes val, single runs of one '
           'recipe in the authors\' toolbox; MCIBI++ against MCIBI +0.46 on ADE20K, +0.10 on COCO-Stuff, −0.14 on LIP '
           '(SegmentationBLWX/sssegmentation `docs/modelzoo/deeplabv3/README.md` and `docs/modelzoo/memorynetv2/README.md`)'),
    Method('RegionContrast (the paper\'s reading)', 'region_contrast', '63_region_contrast_results',
           'synthetic_aspp', 'synthetic_aspp_regcon',
           'a training loss that contrasts each image\'s class-region centres with those of the whole training set, '
           'kept in a memory; dropped after training',
           'HRNetV2-W48 78.48 → 81.90 mIoU on Cityscapes val, as quoted by Contextrast\'s Table 2 '
           '({cite:p}`sung2024contextrast`)'),
    Method('GALD: ASPP + LDv2', 'gald', '43_gald_results', 'synthetic_aspp', 'synthetic_gald_aspp_ldv2',
           'after the ASPP head\'s image-level aggregation, a learned local distribution (LDv2) that re-weights the '
           'aggregated context per position; kept at inference',
           '+ASPP 77.2 → +ASPP+LDv2 80.8 mIoU, ResNet-50 on Cityscapes val (Table I of {cite:p}`li2021gald`)'),
    Method('GALD: CGNL on FCN', 'gald', '43_gald_results', 'synthetic_fcn', 'synthetic_gald_cgnl',
           'a compact generalised non-local block after the FCN trunk (context within the image); kept at inference',
           'FCN 73.7 → +CGNL 78.2 mIoU, ResNet-50 on Cityscapes val (Table I of {cite:p}`li2021gald`)'),
    Method('Contextrast (CCL + BANE)', 'contextrast', '73_contextrast_results', 'synthetic_aspp', 'synthetic_aspp_contextrast',
           'a training loss with class anchors at every encoder layer, fused with the last layer\'s, and negatives drawn '
           'at the edges of the prediction\'s errors; dropped after training',
           'DeepLabV3 (D-ResNet-101) 77.12 → 79.35 and HRNetV2-W48 78.48 → 82.20 mIoU on Cityscapes val (Table 2 of '
           '{cite:p}`sung2024contextrast`)'),
    Method('Contextrast (CCL + semi-hard negatives)', 'contextrast', '73_contextrast_results', 'synthetic_aspp',
           'synthetic_aspp_ccl_semihard',
           'the same loss with the paper\'s other sampler: extra negatives drawn at random among the wrongly predicted '
           'pixels, wherever they lie in the error region; dropped after training',
           'HRNetV2-W48 78.48 → 82.01 mIoU on Cityscapes val (Table 6 of {cite:p}`sung2024contextrast`; with BANE 82.20)'),
]
V3 = ('synthetic-v3', 'aerial-v1')


def _pts(x: float) -> str:
    return '–' if x is None or math.isnan(x) else f'{100 * x:+.1f}'.replace('-', '−')


def _interval(r: dict) -> str:
    return f"{_pts(r['mean'])} [{_pts(r['lo'])}, {_pts(r['hi'])}]"


def _classes(per_class: list, sign: int) -> str:
    "The classes whose paired IoU interval lies wholly above (sign 1) or below (sign -1) zero, largest first."
    keep = [d for d in per_class if not math.isnan(d['mean']) and (d['lo'] > 0 if sign > 0 else d['hi'] < 0)]
    keep.sort(key=lambda d: -sign * d['mean'])
    return ', '.join(f"{d['class']} {_pts(d['mean'])}" for d in keep) or 'none'


def judge(root: Path, m: Method) -> dict:
    """The method's verdicts from the committed runs: {'version': 'v3' or the data version, 'lines': [markdown], 'held'
    (bool: held against every opponent on every benchmark), 'replicated' (the v3 verdict words, or None)}."""
    sm = _status_matrix()
    from ctxseg.grids import run_data_version
    from ctxseg.protocol import compare, judge_claims, on_benchmark, BENCHMARKS
    summ = sm._read(root / 'book' / 'results' / 'cpu' / m.chapter / 'summary.json') or {'runs': []}
    versions = sorted({run_data_version(r['metrics']) for r in summ['runs'] if 'metrics' in r})
    out = {'lines': [], 'held': False, 'replicated': None}
    if any(v in V3 for v in versions):
        runs = sm.runs_of(root, V3)
        judged = judge_claims(runs, [(m.name, m.baseline, m.row, [None])])
        if not judged: return {**out, 'version': None}
        out['version'] = 'v3'
        for j in judged:
            who = 'DeepLabV3' if j['against'] == 'baseline' and m.baseline == 'synthetic_aspp' else \
                  'FCN' if j['against'] == 'baseline' else 'the class-balanced control'
            rs = {b: j['results'][b]['mIoU'] for b in BENCHMARKS if 'mIoU' in j['results'].get(b, {})}
            same = len({r['n'] for r in rs.values()}) == 1           # one seed count, or each benchmark's own
            res = '; '.join(f"{b}: {_interval(r)} {r['verdict']}" + ('' if same else f", {r['n']} paired seeds") for b, r in rs.items())
            unit = 'mIoU points' + (f", {next(iter(rs.values()))['n']} paired seeds" if same and rs else '')
            out['lines'].append(f"against {who}: **{j['verdicts']['mIoU']}** ({unit}; {res})")
        base = [j for j in judged if j['against'] == 'baseline']
        out['replicated'] = base[0]['verdicts']['mIoU'] if base else None
        out['held'] = all(j['verdicts']['mIoU'] == 'held' for j in judged)
        out['per_class'] = {b: compare(runs, on_benchmark(m.baseline, b), on_benchmark(m.row, b))['per_class'] for b in BENCHMARKS
                            if any(r['preset'] == on_benchmark(m.row, b) for r in runs['runs'])}
        out['mde'] = {b: j['results'][b]['mIoU']['mde'] for j in base for b in j['results']}
        out['bimodal'] = [b for j in base for b, r in j['results'].items() if any(r['mIoU']['bimodal'].values())]
        return out
    if not versions: return {**out, 'version': None}
    runs = sm.all_runs(root, versions[-1])
    if not {m.baseline, m.row} <= set(runs['presets']): return {**out, 'version': None}
    r = compare(runs, m.baseline, m.row)
    out.update(version=versions[-1], held=r['verdict'] == 'held', per_class={versions[-1]: r['per_class']},
               mde={versions[-1]: r['mde']}, bimodal=[versions[-1]] if any(r['bimodal'].values()) else [])
    who = 'DeepLabV3' if m.baseline == 'synthetic_aspp' else 'FCN'
    out['lines'].append(f"against {who}, on {versions[-1]} only: **{r['verdict']}** ({_interval(r)} mIoU points, {r['n']} paired seeds); "
                        f"not yet trained on the second benchmark")
    return out


def cost(root: Path, m: Method) -> str:
    "Training FLOPs and inference cost against the row's baseline, from the one cost measurement of the Comparison."
    sm = _status_matrix()
    c = sm._read(root / 'book' / 'results' / 'cpu' / 'comparison_cost.json')
    by = {r['preset']: r for r in (c or {}).get('rows', [])}
    if m.row not in by or m.baseline not in by: return 'not measured yet'
    r, b = by[m.row], by[m.baseline]
    train = f"a training step {100 * (r['train_gflops'] / b['train_gflops'] - 1):+.0f} % FLOPs".replace('-', '−')
    di, dp = r['infer_gflops'] - b['infer_gflops'], r['infer_params_M'] - b['infer_params_M']
    infer = ('nothing at inference (the baseline\'s network exactly)' if abs(di) < 1e-9 and abs(dp) < 1e-9 else
             f"at inference {100 * di / b['infer_gflops']:+.0f} % FLOPs and {dp:+.2f} M parameters".replace('-', '−'))
    return f"{train}; {infer}"


def markdown(root: Path = ROOT) -> str:
    root = Path(root); sys.path.insert(0, str(root))
    rows = [(m, judge(root, m), cost(root, m)) for m in METHODS]
    held3 = [m.name for m, j, _ in rows if j['version'] == 'v3' and j['held']]
    v3_not = [f"{m.name} ({j['replicated']})" for m, j, _ in rows if j['version'] == 'v3' and not j['held']]
    v2_held = [m.name for m, j, _ in rows if j['version'] not in ('v3', None) and j['held']]
    v2_not = [m.name for m, j, _ in rows if j['version'] not in ('v3', None) and not j['held']]
    free = [m.name for m, _, c in rows if 'nothing at inference' in c]
    short = ['* **Held on both benchmarks, against the baseline and against the class-balanced control:** '
             + (', '.join(held3) if held3 else 'no method so far') + '.']
    if v3_not: short.append('* **Judged on both benchmarks and not held on both:** ' + '; '.join(v3_not) + '.')
    if v2_held: short.append('* **Held on version 2 of the first benchmark only, not yet re-judged on both:** ' + ', '.join(v2_held)
                             + '. On version 2 the baseline never learned the rare sign, and much of these gains was that class.')
    if v2_not: short.append('* **Not held on version 2 of the first benchmark (refuted or not resolved), not yet re-judged:** ' + ', '.join(v2_not) + '.')
    short.append('* **Free at inference** (a loss dropped after training): ' + ', '.join(free) + '; the others stay in the network.')
    c = _status_matrix()._read(root / 'book' / 'results' / 'cpu' / 'comparison_cost.json')
    how = (f"The costs are FLOPs counted on 192-px images at batch 8, from one measurement (`{c['command']}`, "
           f"{c['machine']['hardware']}); the verdicts are the protocol's, recomputed from the committed runs when the book "
           f"is built." if c else 'No cost measurement is committed yet.')
    out = ['## The short answer', '', *short, '', '## Method by method', '', how, '']
    for m, j, c in rows:
        out += [f'### {m.name}', '', f'* **What it changes.** {m.changes[0].upper() + m.changes[1:]}.',
                f'* **What it costs.** {c[0].upper() + c[1:]}.']
        if j['version'] is None:
            out += ['* **On this book\'s benchmarks.** Not trained yet.']
        else:
            out += ['* **On this book\'s benchmarks.** ' + ' '.join(l[0].upper() + l[1:] + '.' for l in j['lines'])]
            where = '; '.join(f"{b}: helped {_classes(pc, 1)}; hurt {_classes(pc, -1)}" for b, pc in j['per_class'].items())
            out += [f'* **Where** (classes whose paired IoU interval excludes zero, IoU points). {where}.']
            sure = '; '.join(f"{b}: the smallest effect these seeds detect is {100 * v:.1f} mIoU points" for b, v in j['mde'].items())
            bim = (f" The runs are bimodal on {', '.join(j['bimodal'])} (its seeds fall into two groups), so the "
                   f"interval understates the spread." if j['bimodal'] else '')
            scope = (' Both benchmarks are small and procedural, trained on a CPU at 192 and 128 pixels.' if j['version'] == 'v3'
                     else ' One small procedural benchmark, in a version whose baseline missed a class.')
            out += [f'* **How sure.** {sure}.{bim}{scope}']
        out += [f"* **Published figures** (quoted, not measured here: the paper's, its authors' release's or a third party's, as named). {m.paper[0].upper() + m.paper[1:]}.", f'* **Chapter:** {{doc}}`/nbs/{m.results}`.', '']
    return '\n'.join(out)


def write(root: Path = ROOT) -> Path:
    p = Path(root) / 'book' / '_generated' / 'which_method.md'
    p.parent.mkdir(parents=True, exist_ok=True)
    text = markdown(Path(root))
    if not p.is_file() or p.read_text() != text: p.write_text(text)
    return p


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--write', action='store_true', help='write book/_generated/which_method.md instead of printing')
    ap.add_argument('--root', type=Path, default=ROOT)
    a = ap.parse_args(argv)
    print('wrote', write(a.root)) if a.write else print(markdown(a.root))
    return 0


if __name__ == '__main__':
    sys.exit(main())
