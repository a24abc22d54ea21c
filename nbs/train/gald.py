# %% [markdown]
# # GALD: training
# > Table I of the GALD paper (global aggregation, local distribution, their arrangements) over several seeds; the learned LDv1 masks and LDv2 affinities; boundary F-scores; for the smoke, cpu and gpu profiles.
#
# - skip_exec: true

# %% [markdown]
# This notebook trains the GALD heads of {doc}`/nbs/41_gald_module` and shows what came out. It is a *training
# notebook*. This page is the notebook executed in its cpu profile; its clean source is `nbs/train/gald.ipynb`, which
# papermill runs for any profile.
#
# | profile | presets | data | where it runs |
# |---|---|---|---|
# | `smoke` | `smoke_gald_ldv1`, `smoke_gald_ldv2`, a few dozen iterations | synthetic, 32 px | CI, seconds |
# | `cpu` | the rows of Table I that the benchmarks can test, on both: `*_gald_aspp_ldnone` (the same-head control without LD), `*_gald_aspp_ldv2`, `*_gald_aspp_ldv1`, `*_gald_cgnl`; FCN, DeepLabV3 and its class-balanced control are the runs of the baselines page, reused | synthetic v3 (192 px, 1,200 iterations) and aerial v1 (128 px, 2,200 iterations), 5 seeds | a 2-core machine, 4 to 7 minutes a run |
# | `gpu` | `cityscapes_gald_aspp_ldv2_r101`, `cityscapes_gald_aspp_ldv2_r50` (the paper's rows); `cityscapes_gald_cgnl_ldv1_r{101,50}` (the released code's network) by name | Cityscapes, 832 crops (769 for the code's), 8 GPUs × 1, 50k iterations, OHEM | a CUDA machine with Cityscapes under `data/cityscapes` |
#
# The gpu presets build the authors' networks to the tensor and follow their recipes field by field ({doc}`/nbs/15_convert`,
# {doc}`/nbs/16_recipes`; the table of this chapter's presets is in {doc}`/nbs/42_gald_presets`). Before a GPU run, `ctxseg rehearse cityscapes_gald_cgnl_ldv1_r101` takes two full-size steps
# on a CPU ({doc}`/nbs/17_rehearse`, where the *GPU readiness* table gives each preset's FLOPs and memory). A model trained with the authors' code evaluates through ctxseg: `ctxseg eval cityscapes_gald_cgnl_ldv1_r101 --weights authors:gald=<file>`.
#
# ```
# ctxseg run-notebooks --profile cpu gald                       # -> book/results/cpu/gald.ipynb
# ctxseg run-notebooks --profile gpu gald --time-budget 14400   # 4-hour chunks: run it again to resume
# ```
#
# ```{admonition} Reproduce this page
# `ctxseg run-notebooks --profile cpu gald` on a CPU: 40 GALD runs; the runs of FCN, DeepLabV3 and its control are
# copied from `runs/cpu/baselines` when the baselines page has trained them (otherwise they are trained here as well).
# The wall time of each run is in the section *What a run costs* at the end. Finished runs are reused, so an
# interrupted execution resumes where it stopped (`--time-budget` pauses it on purpose). Version 2 of this page, with
# the rows benchmark v3 dropped (CGNL with GroupNorm scale 0, the compact head), is kept as
# `book/results/cpu/v2/gald.ipynb`.
# ```
#
# The FCN, PSP and ASPP rows of the cpu ablation are not retrained: every `synthetic_gald_*` preset is the
# `synthetic_aspp` config with another head, so those rows are exactly the runs of {doc}`/book/results/cpu/baselines`,
# read from their committed artefacts (the cell below checks that their configs are the presets').

# %% [markdown]
# The parameters (papermill replaces them; `None` means the profile's default): the `profile`; the `presets` and
# `seeds`; `overrides` applied to every preset; `out_dir` for the run folders (default `runs/<profile>/gald`);
# `time_budget` in seconds (0: no limit); `command`, filled in by `ctxseg run-notebooks`.

# %% tags=["parameters"]
import os
profile = os.environ.get('CTXSEG_PROFILE', 'smoke')   # smoke | cpu | gpu; papermill's value wins
presets = None        # list of preset names, or None
seeds = None          # list of ints, or None
overrides = []        # list of override strings
out_dir = None        # folder for the run folders, or None
time_budget = 0.0     # seconds; 0: no limit
command = ''          # how this execution was started

# %% [markdown]
# Each profile's defaults. The cpu presets are ordered by what the chapter needs most, so a grid cut short by its
# time budget loses the later rows before it loses seeds: first the control every LD effect is measured against,
# then the two LD modules, then CGNL, then the layout comparison. The cpu rows use LDv2 with k = 5, r = 1 (the
# paper's r = 3 scaled to our 24×24 feature maps, see {doc}`/nbs/42_gald_presets`). The rows of FCN, DeepLabV3
# and its control come from the baselines page.

# %%
from ctxseg.chapter import SMOKE_OVERRIDES
from ctxseg.protocol import on_both, on_benchmark
from ctxseg.presets.gald import V3_ROWS
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke_gald_ldv1', 'smoke_gald_ldv2'], seeds=[0, 1], overrides=SMOKE_OVERRIDES, reference=None),
    'cpu': dict(presets=on_both(['synthetic_fcn', 'synthetic_aspp', 'synthetic_aspp_balanced', *V3_ROWS]),
                seeds=[0, 1, 2, 3, 4], overrides=[], reference=None),
    'gpu': dict(presets=['cityscapes_gald_aspp_ldv2_r101', 'cityscapes_gald_aspp_ldv2_r50'], seeds=[0], overrides=[],
                reference='runs/gpu/baselines'),
}

# %%
import math
import numpy as np
import matplotlib.pyplot as plt
import torch
from ctxseg import presets as P
from IPython.display import display, Markdown
from ctxseg.chapter import (stack_figures, benchmark_claims, benchmark_pairs,
                            setup, train_chapter, adopt_runs, by_dataset, plot_pairs, trained_runs, load_model, save_results)
from ctxseg.provenance import repo_root
from ctxseg.grids import (grid_table, class_iou_table, plot_losses, plot_class_iou, plot_overlays, read_log, log_series, Table,
                          ablation_table, class_iou, plus_minus, mean_std, one_piece_walls, table_notes)
from ctxseg.protocol import claims_table, expand_claims, judge_claims, replication_table, cue_table, bottom_line, claims_on
from ctxseg.presets.gald import ABLATION_ROWS, TABLE_I_DELTAS, CPU_CLAIMS

ch = setup('gald', PROFILE_DEFAULTS, profile, presets, seeds, overrides, out_dir, time_budget, command)

# %% [markdown]
# The `gpu` profile needs a CUDA device and the prepared dataset; without them it stops here with a message.

# %%
ch.check_gpu()

# %% [markdown]
# ## The baseline rows
#
# FCN, DeepLabV3 and its class-balanced control are the runs of {doc}`/book/results/cpu/baselines`: a run folder is
# copied here when its recorded config and data are exactly those this grid would train; otherwise the row is
# trained here like any other.

# %%
reused = adopt_runs(ch, repo_root() / 'runs' / profile / 'baselines', [p for p, c in ch.cfgs.items() if c.model.head != 'gald'])

# %% [markdown]
# ## Training
#
# One folder per preset and seed; finished runs are reused, a paused run is resumed, and `summary.json` in
# `out_dir` records every run's status and metrics.

# %%
summary = train_chapter(ch)

# %% [markdown]
# ## Results
#
# The runs of this grid: mean ± sample standard deviation over seeds on the validation split, in percent.

# %%
grid_table(summary)

# %%
bench = by_dataset(ch, summary)
def rows_on(d):
    "The Table I rows and deltas on benchmark `d`: the synthetic presets renamed (`on_benchmark`)."
    ren = lambda p: on_benchmark(p, d) if p.startswith('synthetic_') else p
    return [(ren(p), l) for p, l in ABLATION_ROWS], [(t, ren(r), a) for t, r, a in TABLE_I_DELTAS]


# %% [markdown]
# Our Table I, one per benchmark, in the paper's order, the baseline rows included. $\Delta a$ is the difference of mean mIoU
# to FCN, $\Delta b$ to the ASPP baseline; BF@t is the boundary F-score with a tolerance of t pixels (the Table V
# metric; at 192-pixel images, 1 and 2 pixels are the tolerances the baselines were evaluated with).

# %%
for d, s in bench.items():
    rows, deltas = rows_on(d)
    display(ablation_table(s, rows=rows, deltas=deltas))

# %% [markdown]
# The training loss of every run (all terms, the auxiliary head's included).

# %%
#| label: fig-train-gald-losses
#| fig-cap: Training loss (all terms, the auxiliary head included; running mean over 3 logs) of every row, one line per seed and a panel per row, first on the synthetic benchmark, then on the aerial one.
stack_figures([plot_losses(s, smooth=ch.smooth) for s in bench.values()]); plt.show()

# %% [markdown]
# Per-class IoU (mean over seeds, whiskers one standard deviation). GALD claims its gains on small objects and
# thin structures: on the synthetic benchmark these are `sign` and `wire`, on the aerial one `well` and `path`.

# %%
#| label: fig-train-gald-class-iou
#| fig-cap: Per-class validation IoU of every row, mean over five seeds with one-standard-deviation whiskers, one panel per benchmark.
figs = []
for d, s in bench.items(): fig = plot_class_iou(s); fig.axes[0].set_title(d, fontsize=10); figs.append(fig)
stack_figures(figs); plt.show()

# %%
for d, s in bench.items(): display(class_iou_table(s))

# %% [markdown]
# ## The claims, on both benchmarks
#
# Every row shares each seed's data order and the initial weights of the trunk and the auxiliary head with the
# baseline runs (`ctxseg.models.segmentor.build_model` builds each part from its own seed), so all rows form paired
# samples. The claims are `CPU_CLAIMS` of {doc}`/nbs/42_gald_presets` for the rows this grid trains, judged with the
# protocol of {doc}`/nbs/11c_protocol`: on each benchmark the mean paired difference over the seeds with its 95 % t
# interval, on the mIoU and on the mIoU without the rarest class; against the baseline and, for the claims against
# DeepLabV3, against its class-balanced control; a claim holds only if it holds on both benchmarks. Every LD effect is
# measured against the control in the same head (`*_gald_aspp_ldnone`: the same GA, convb, concatenation and fuse,
# without LD). Then the rates of runs that use the scene cue, and on each benchmark the class and boundary targets
# (the thin and small classes for LD, the pair of classes that only the scene tells apart for GA).

# %%
CLAIMS = [c for c in CPU_CLAIMS if c[1] in ch.presets and c[2] in ch.presets]
judged = judge_claims(summary, CLAIMS) if CLAIMS else []
replication_table(judged) if judged else print('not in this profile: the claims need the cpu grid')

# %%
Markdown(bottom_line(judged)) if judged else print('not in this profile')

# %%
cue_table(judged) if judged else print('not in this profile')

# %%
fallback = [('LDv2 against LDv1', ch.presets[0], ch.presets[-1], [None])]
for t in benchmark_claims(bench, CLAIMS, fallback): display(t)

# %%
#| label: fig-train-gald-paired
#| fig-cap: mIoU seed by seed for each pair the claims compare, one row of panels per benchmark: a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black.
benchmark_pairs(bench, CLAIMS, fallback, strip=('{d}_gald_', '{d}_'), width=2.6, height=3.0, sharey=False); plt.show()

# %% [markdown]
# ## Where the gradient goes: the head's parts over training
#
# In the v1 chapters, the ASPP module inside the GALD head learned less than the same module in the plain ASPP
# head. The suspected cause was that the layers after it and the concatenation with $X$ leave the module little
# gradient early in training. Every cpu row logs the gradient norm of each part of the head
# (`train.grad_norms`, before clipping). The left panel shows the GA module's gradient norm for every row of
# this grid (seed 0, a running mean over 10 logs). The right panel shows it as a share of the classifier's:
# how much of the gradient that reaches the top of the head gets through to the GA.

# %%
#| label: fig-train-gald-ga-gradient
#| fig-cap: Gradient norm reaching the GA module of every GALD row, seed 0, a running mean over 10 logs: on a log scale (left) and as a share of the classifier's (right), both benchmarks (the synthetic runs end at 1,200 iterations, the aerial ones at 2,200).
fig, axs = plt.subplots(1, 2, figsize=(11, 3.6))
s0 = min(ch.seeds)
for p in [p for p in ch.presets if ch.cfgs[p].model.head == 'gald']:
    it, ga = log_series(ch.out_dir / p / f'seed{s0}', 'grad_norms', 'head.ga', smooth=10)
    _, cl = log_series(ch.out_dir / p / f'seed{s0}', 'grad_norms', 'head.classifier', smooth=10)
    if it is None: continue
    axs[0].plot(it, ga, lw=1, label=p.replace('_gald_', ' '))
    axs[1].plot(it, ga / cl, lw=1, label=p.replace('_gald_', ' '))
axs[0].set_yscale('log'); axs[0].set_ylabel('‖∂L/∂θ_GA‖'); axs[1].set_ylabel('‖∂L/∂θ_GA‖ / ‖∂L/∂θ_classifier‖')
for ax in axs:
    ax.set_xlabel('iteration'); ax.grid(alpha=.3)
    if ax.lines: ax.legend(fontsize=8)
fig.suptitle(f'gradient reaching the GA module, seed {s0}'); fig.tight_layout(); plt.show()

# %% [markdown]
# The plain ASPP head's runs are the committed baselines, which did not log their gradients. So the comparison
# with it is made here, at initialisation. The same seed builds the same trunk and draws the same first batch,
# and one backward pass measures the gradient norm of the ASPP module (image pooling, branches and its 3×3
# bottleneck) in the plain head, in the GALD head without LD, and in its compact form. The mean is over the
# grid's seeds.

# %%
from ctxseg.data import build_dataset, build_loader
from ctxseg.engine import seed_everything, load_checkpoint
from ctxseg.models.segmentor import build_model

def ga_grad_at_init(preset, seed):
    ov = [*ch.overrides, f'train.seed={seed}'] + (['data.size=64', 'data.batch_size=2', 'data.num_train=8'] if profile == 'smoke' else [])
    cfg = P.get(preset, ov)
    ds = build_dataset(cfg.data, 'train')
    seed_everything(seed)
    model = build_model(cfg, ds.num_classes, ds.ignore_index).train()
    b = next(iter(build_loader(ds, cfg.data.batch_size, train=True, seed=seed)))
    model(b['image'], b['label']).loss.backward()
    pre = 'head.ga.' if cfg.model.head == 'gald' else 'head.'
    parts = ('image_pool', 'branches', 'bottleneck')
    g = [p.grad.pow(2).sum() for n, p in model.named_parameters() if p.grad is not None and n.startswith(tuple(pre + q for q in parts))]
    cls = model.head.classifier.weight.grad.norm()
    return float(torch.stack(g).sum().sqrt()), float(torch.stack(g).sum().sqrt() / cls)

if profile in ('smoke', 'cpu'):
    rows, at_init = [], {}
    for p in ('synthetic_aspp', 'synthetic_gald_aspp_ldnone', 'synthetic_gald_aspp_ldnone_compact'):
        vals = np.array([ga_grad_at_init(p, s) for s in ch.seeds])
        at_init[p] = {'seeds': ch.seeds, 'grad_norm': vals[:, 0].tolist(), 'relative_to_classifier': vals[:, 1].tolist()}
        rows.append([p, *[plus_minus(*mean_std(v), scale=1, fmt='.3g', sd_fmt='.2g') for v in vals.T]])
    display(Table(['head', '‖∂L/∂θ_ASPP‖ at step 1', 'relative to the classifier\'s'], rows,
                  {'seeds': ', '.join(map(str, ch.seeds)), 'note': 'mean ± std over seeds; one batch, one backward pass'},
                  title='gradient reaching the ASPP module at initialisation'))
    save_results(ch, 'gradients', {'what': 'gradient norm of the ASPP module (image_pool, branches, bottleneck) after one backward '
                                           'pass at initialisation, first training batch of each seed', 'presets': at_init}, indent=1)

# %% [markdown]
# ## Does the LDv1 mask learn?
#
# The v1 results drew the LDv1 mask's channel mean at 0.49–0.55, near σ(0). An average over 64 channels can hide
# a mask that varies a lot in each channel, so the runs log three statistics of $M$ during training: its mean,
# its spread over positions (the standard deviation over $h\times w$, averaged over channels and images), and
# its mean distance from ½. Beside them is the gradient norm that reaches the LD module, as a share of the GA's.

# %%
#| label: fig-train-gald-ldv1-mask
#| fig-cap: The LDv1 mask M during training, one line per seed: its mean, its spread over positions, its mean distance from ½, and the gradient norm reaching the LD module as a share of the GA's (log scale); blue lines the synthetic benchmark, orange the aerial one.
v1_runs = [p for p, c in ch.cfgs.items() if c.model.head_kwargs.get('ld') == 'v1']
colour = lambda p: 'tab:orange' if p.startswith('aerial_') else 'tab:blue'
if v1_runs:
    fig, axs = plt.subplots(1, 4, figsize=(15, 3.2))
    for p in v1_runs:
        for s in ch.seeds:
            run = ch.out_dir / p / f'seed{s}'
            for ax, k in zip(axs[:3], ('mask_mean', 'mask_spread', 'mask_dev')):
                it, v = log_series(run, 'stats', f'head.ld.{k}', smooth=5)
                if it is not None: ax.plot(it, v, lw=1, color=colour(p), label=f'{p.split("_")[0]} s{s}'); ax.set_title(k, fontsize=10)
            it, ld = log_series(run, 'grad_norms', 'head.ld', smooth=5); _, ga = log_series(run, 'grad_norms', 'head.ga', smooth=5)
            if it is not None: axs[3].plot(it, ld / ga, lw=1, color=colour(p))
    axs[3].set_title('‖∂L/∂θ_LD‖ / ‖∂L/∂θ_GA‖', fontsize=10); axs[3].set_yscale('log')
    for ax in axs: ax.set_xlabel('iteration'); ax.grid(alpha=.3)
    axs[0].legend(fontsize=8, ncol=2); fig.suptitle(f'LDv1 mask during training ({", ".join(v1_runs)})'); fig.tight_layout(); plt.show()
    last = {k: [read_log(ch.out_dir / p / f'seed{s}')[-1].get('stats', {}).get(f'head.ld.{k}', math.nan) for p in v1_runs for s in ch.seeds]
            for k in ('mask_mean', 'mask_spread', 'mask_dev')}
    print('at the last logged step, over seeds: ' + '; '.join(f'{k} {np.nanmean(v):.3f} (min {np.nanmin(v):.3f}, max {np.nanmax(v):.3f})'
                                                              for k, v in last.items()))
else:
    print('no LDv1 row in this grid')


# %% [markdown]
# The logged statistics describe the mask's distribution. Whether its weights learned is a question for the
# checkpoints: how far each part of the head moved from its initial weights (rebuilt from the run's seed) beyond
# a plain rescaling, which weight decay alone would produce. For the last BatchNorm before the sigmoid, whose
# scale γ and shift β set the mask's range and centre, the table gives its final values.

# %%
def moved(run, preset, seed, parts=('head.ld.', 'head.ga.', 'head.convb.', 'head.fuse.')):
    "Relative change of each part's weights beyond the best rescaling of the initial ones, and the last LD BatchNorm."
    cfg = P.get(preset, [*ch.overrides, f'train.seed={seed}'])
    K = len(build_dataset(cfg.data, 'val').classes)
    seed_everything(seed); init = build_model(cfg, K).state_dict()                # the run's initial weights (paired seeds)
    fin = load_checkpoint(run / 'checkpoint.pt')['model']
    out = {}
    for pre in parts:
        ks = [k for k in init if k.startswith(pre) and init[k].is_floating_point() and 'running' not in k and init[k].dim() > 1]
        if not ks: continue
        a = torch.cat([init[k].double().flatten() for k in ks]); b = torch.cat([fin[k].double().flatten() for k in ks])
        out[pre.rstrip('.')] = float((b - (b @ a) / (a @ a) * a).norm() / a.norm())
    bn = [k for k in fin if k.startswith('head.ld.down') and k.endswith('weight') and fin[k].dim() == 1][-1]
    out['gamma'], out['beta'] = fin[bn].double().mean().item(), fin[bn.replace('weight', 'bias')].double().abs().mean().item()
    return out

ld_moves = {r['dir']: moved(run, r['preset'], r['seed']) for r, run in trained_runs(summary) if r['preset'] in v1_runs}
if ld_moves:
    keys = list(next(iter(ld_moves.values())))
    display(Table(['run', *keys], [[r, *[f'{v[k]:.4f}' for k in keys]] for r, v in ld_moves.items()],
                  {'columns': 'parts: ‖W − cW₀‖/‖W₀‖ with the best c; gamma: mean γ of the last LD BatchNorm (1 at '
                              'initialisation); beta: mean |β| (0 at initialisation)'}, title='how far the LDv1 branch moved'))
    if profile == 'cpu': save_results(ch, 'ldv1_weights', {'runs': ld_moves}, indent=1)

# %% [markdown]
# ## CGNL at initialisation
#
# CGNL multiplies θ by one scalar per channel group, $s = \sum \phi\, g$, a sum over $C_i/G \cdot h\cdot w$
# products. The runs log its mean size $|s|$ and the share of groups whose $s$ takes both signs within one batch.
# With the authors' GroupNorm scale of 1, the block's output is at unit scale from the first step, whatever $s$
# is. With scale 0 the block starts as the identity.

# %%
#| label: fig-train-gald-cgnl
#| fig-cap: CGNL's group scalar s during training, one line per run (blue: the synthetic benchmark; orange: the aerial one), with the authors' GroupNorm scale: its mean size per group (log scale) and the share of groups whose s changes sign within a batch.
cg_runs = [p for p, c in ch.cfgs.items() if c.model.head_kwargs.get('ga') == 'cgnl']
if cg_runs:
    fig, axs = plt.subplots(1, 2, figsize=(11, 3.4))
    for p in cg_runs:
        for s in ch.seeds:
            for ax, k in zip(axs, ('s_abs', 'sign_flip')):
                it, v = log_series(ch.out_dir / p / f'seed{s}', 'stats', f'head.ga.1.{k}', smooth=5)
                if it is not None: ax.plot(it, v, lw=1, color=colour(p),
                                           alpha=.7, label=f'{p.split("_")[0]} s{s}')
    axs[0].set_yscale('log'); axs[0].set_title('mean |s| per group', fontsize=10); axs[1].set_title('groups whose s changes sign in a batch', fontsize=10)
    for ax in axs: ax.set_xlabel('iteration'); ax.grid(alpha=.3)
    axs[0].legend(fontsize=8, ncol=2); fig.tight_layout(); plt.show()
else:
    print('no CGNL row in this grid')

# %% [markdown]
# ## Qualitative results
#
# The same validation images under the seed-0 run of each GALD preset (when its checkpoint is on disk):
# image, ground truth, then each prediction with its wrong pixels outlined in black and its pixel accuracy in the
# corner. Small signs and thin wires are where the local distribution should help, if it helps at all.

# %%
#| label: fig-train-gald-overlays
#| fig-cap: Three validation images of each benchmark (rows): the image, its ground truth, then the seed-0 prediction of each GALD row, wrong pixels outlined in black and pixel accuracy in the corner.
stack_figures([plot_overlays(s, n=3, seed=ch.overlay_seed) for s in bench.values()]); plt.show()

# %% [markdown]
# ## What the local distribution learned
#
# The paper draws the LDv1 masks (Fig. 7: the mean of $M$ over channels) and the LDv2 local affinities
# (Fig. 9: the weights $a_{pn}$ one position gives its $k\times k$ neighbours). We draw both from a trained model of
# this grid (seed 0) on validation images: the mask over the image, and for a few positions the 25 affinities
# placed where the neighbours are (feature cells are 8×8 pixels; a dilation r puts neighbours 8r px apart).

# %%
from ctxseg.data import denormalize
from ctxseg.synthetic import colorize
from ctxseg.methods.gald import local_offsets

def head_maps(model, images):
    with torch.no_grad(): return model.head(model.backbone(images), return_maps=True)

first = next(iter(bench.values()))                                  # the synthetic benchmark's runs (its classes' colours below)
kw = {r['preset']: ch.cfgs[r['preset']].model.head_kwargs for r, _ in trained_runs(first, seed=0)}    # finished seed-0 runs
v1 = next((p for p, k in kw.items() if k.get('ld') == 'v1'), None)
v2 = next((p for p, k in kw.items() if k.get('ld') == 'v2' and k.get('arrangement') == 'ga_then_ld'), None)
print('LDv1 model:', v1, '· LDv2 model:', v2)

# %%
#| label: fig-train-gald-ldv1-masks
#| fig-cap: LDv1 masks of the seed-0 ASPP + LDv1 model on four validation images (cf. the paper's Fig. 7): the image, its ground truth and the mean of the mask M over channels (the range of each map is printed below the figure).
if v1:
    model, cfg, ds = load_model(ch.out_dir / v1 / 'seed0')
    idx = [0, 1, 2, 3]
    batch = torch.stack([ds[i]['image'] for i in idx])
    M = head_maps(model, batch)['mask']                                   # B×C×h×w
    fig, axs = plt.subplots(3, len(idx), figsize=(2.4 * len(idx), 7.2))
    for j, i in enumerate(idx):
        s = ds[i]
        axs[0, j].imshow(denormalize(s['image'])); axs[1, j].imshow(colorize(s['label'].numpy()))
        im = axs[2, j].imshow(M[j].mean(0), cmap='viridis'); fig.colorbar(im, ax=axs[2, j], fraction=0.046)
        for a in axs[:, j]: a.axis('off')
    axs[0, 0].set_title('image', loc='left'); axs[1, 0].set_title('ground truth', loc='left')
    axs[2, 0].set_title('mean of M over channels', loc='left')
    fig.suptitle(f'LDv1 masks (cf. Fig. 7), {v1} seed 0'); plt.tight_layout(); plt.show()
    mm = M.mean(1)
    print('mean of M over channels, per image: ' + '; '.join(f'{float(m.min()):.3f} to {float(m.max()):.3f}' for m in mm))
else:
    print('no finished LDv1 run in this grid')

# %%
#| label: fig-train-gald-ldv2-affinities
#| fig-cap: LDv2 local affinities of the seed-0 ASPP + LDv2 model on one validation image (cf. the paper's Fig. 9): its ground truth, then for four feature cells (cyan cross) the weights given to their 25 neighbours, marker area proportional to the weight; each panel's title gives its largest weight.
if v2:
    model, cfg, ds = load_model(ch.out_dir / v2 / 'seed0')
    kw = cfg.model.head_kwargs
    offs = local_offsets(kw.get('kernel_size', 5), kw.get('dilation', 3))
    i = 1
    s = ds[i]
    A = head_maps(model, s['image'][None])['affinity'][0]                 # K×h×w
    h, w = A.shape[-2:]; cell = s['image'].shape[-1] // w
    points = [(h // 2, w // 2), (2, 2), (h - 3, w // 3), (h // 3, w - 2)]
    fig, axs = plt.subplots(1, len(points) + 1, figsize=(2.6 * (len(points) + 1), 2.9))
    axs[0].imshow(colorize(s['label'].numpy())); axs[0].set_title('ground truth'); axs[0].axis('off')
    for ax, (y, x) in zip(axs[1:], points):
        ax.imshow(denormalize(s['image']), alpha=0.6)
        for n, (dy, dx) in enumerate(offs):
            yy, xx = y + dy, x + dx
            inside = 0 <= yy < h and 0 <= xx < w
            ax.scatter((xx + .5) * cell, (yy + .5) * cell, s=900 * float(A[n, y, x]) + 4,
                       c='red' if inside else 'grey', alpha=0.8, marker='s' if inside else 'x')
        ax.scatter((x + .5) * cell, (y + .5) * cell, s=30, c='cyan', marker='+')
        ax.set_xlim(-0.5, w * cell); ax.set_ylim(h * cell, -0.5); ax.axis('off')
        ax.set_title(f'cell ({y}, {x}), max a = {float(A[:, y, x].max()):.2f}', fontsize=8)
    fig.suptitle(f'LDv2 local affinities (cf. Fig. 9), {v2} seed 0: marker area ∝ a_pn; grey × = zero padding')
    plt.tight_layout(); plt.show()
    ent = -(A.clamp_min(1e-12).log() * A).sum(0)                           # h×w entropy of each row
    print(f'affinity entropy: mean {float(ent.mean()):.2f} nats (uniform over {len(offs)}: {math.log(len(offs)):.2f})')
else:
    print('no finished LDv2 run in this grid')

# %% [markdown]
# ## Boundary F-score (Table V style)
#
# The boundary F-score at each pixel tolerance the runs were evaluated with (`eval.boundary_tolerances`), mean ± std
# over seeds, for FCN, the ASPP baseline and every row of this grid.

# %%
for d, s in bench.items():
    rows, deltas = rows_on(d)
    bf = ablation_table(s, rows=rows, deltas=deltas)
    cols = [i for i, h in enumerate(bf.header) if h.startswith('BF@')]
    display(Table(['row', 'preset', *[bf.header[i] for i in cols]], [[r[0], r[1], *[r[i] for i in cols]] for r in bf.rows], bf.notes,
                  title=f'boundary F-score, {d}'))

# %% [markdown]
# ## What a run costs
#
# The wall time of every run trained in one piece (a run resumed after a pause is left out: its time is split), per
# benchmark, on the machine the runs record; the baseline rows are the baselines page's runs.

# %%
Table(['benchmark', 'runs', 'fastest', 'median', 'slowest'],
      [[d, str(len(w)), f'{min(w):.0f} s', f'{np.median(w):.0f} s', f'{max(w):.0f} s']
       for d, w in ((d, one_piece_walls(s)) for d, s in bench.items()) if w],
      table_notes(summary), title='wall time of a run')
