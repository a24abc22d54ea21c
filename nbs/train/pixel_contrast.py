# %% [markdown]
# # Pixel contrast: training
# > A baseline against the same model trained with cross-image pixel contrast, over several seeds: results table, loss curves, per-class IoU and the embedding space, for the smoke, cpu and gpu profiles.
#
# - skip_exec: true

# %% [markdown]
# This notebook trains the comparison of the pixel contrast chapter {cite:p}`wang2021pixelcontrast`: a baseline, and
# the identical model with the contrastive loss of {doc}`/nbs/32_pixel_contrast_module` added (the projection head
# and memories are training-only; inference is the baseline's network). It is a *training notebook*. This page is the
# notebook executed in its cpu profile; its clean source is `nbs/train/pixel_contrast.ipynb`, which papermill runs
# for any profile.
#
# | profile | presets | data | where it runs |
# |---|---|---|---|
# | `smoke` | `smoke`, `smoke_pixcon`, a few dozen iterations | synthetic, 32 px | CI, seconds |
# | `cpu` | DeepLabV3 and its class-balanced control (`*_aspp`, `*_aspp_balanced`: the runs of the baselines page, reused) vs `*_aspp_pixcon_batch` (in-batch anchors, the authors' released recipe, λ = 0.1) and `*_aspp_pixcon` (the paper's memories with semi-hard mining), on both benchmarks | synthetic v3 (192 px, 1,200 iterations) and aerial v1 (128 px, 2,200 iterations), 5 seeds | this 2-core machine, 4 to 7 minutes a run |
# | `gpu` | `cityscapes_pixcon_{base_,}aspp_r101`, `cityscapes_pixcon_{base_,}hr48` (the authors' recipes, without and with the loss); `cityscapes_pixcon_ocr_hr48` by name | Cityscapes, 1024×512 crops, 40k iterations, 4 GPUs × 2 | a CUDA machine with Cityscapes under `data/cityscapes` |
#
# The gpu presets build the authors' networks to the tensor and follow their recipes field by field ({doc}`/nbs/15_convert`,
# {doc}`/nbs/16_recipes`; the table of this chapter's presets is in {doc}`/nbs/33_pixel_contrast_presets`). Before a GPU run, `ctxseg rehearse cityscapes_pixcon_hr48` takes two full-size steps
# on a CPU ({doc}`/nbs/17_rehearse`, where the *GPU readiness* table gives each preset's FLOPs and memory). A released checkpoint of the authors evaluates through ctxseg in minutes: `ctxseg eval cityscapes_pixcon_hr48 --weights authors:pixel_contrast=<file> --set data.root=data/<dataset>`.
#
# ```
# ctxseg run-notebooks --profile cpu pixel_contrast                       # -> book/results/cpu/pixel_contrast.ipynb
# ctxseg run-notebooks --profile gpu pixel_contrast --time-budget 14400   # 4-hour chunks: run it again to resume
# ```
#
# ```{admonition} Reproduce this page
# `ctxseg run-notebooks --profile cpu pixel_contrast` on a CPU: 20 pixel-contrast runs; the 20 runs of DeepLabV3 and
# its control are copied from `runs/cpu/baselines` when the baselines notebook has trained them (otherwise they are
# trained here as well). The wall time of each run is in the section *What a run costs* at the end. Finished runs are
# reused, so an interrupted execution resumes where it stopped (`--time-budget` pauses it on purpose). Version 2 of
# this page, with the λ sweep (λ = 0.05 and 0.01) whose verdicts stand, is kept as
# `book/results/cpu/v2/pixel_contrast.ipynb`.
# ```
#
# The gpu presets train with 2 images per process: launch the kernel's runs under `torchrun
# --nproc_per_node=4` (or raise `data.batch_size` to 8 on one large GPU) to get the recipe's batch of 8.

# %% [markdown]
# The parameters (papermill replaces them; `None` means the profile's default): `profile`, `presets`,
# `seeds`, `overrides` (applied to every preset), `out_dir` (default `runs/<profile>/pixel_contrast`),
# `time_budget` (seconds; 0 = no limit) and `command` (how the execution was started).

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
# Each profile's defaults. The smoke settings make the loss fall clearly within the iterations CI affords.

# %%
from ctxseg.chapter import SMOKE_OVERRIDES
from ctxseg.protocol import on_both
from ctxseg.presets.pixel_contrast import V3_ROWS
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke', 'smoke_pixcon'], seeds=[0, 1], overrides=SMOKE_OVERRIDES),
    'cpu': dict(presets=on_both(['synthetic_aspp', 'synthetic_aspp_balanced', *V3_ROWS]), seeds=[0, 1, 2, 3, 4], overrides=[]),
    'gpu': dict(presets=['cityscapes_pixcon_base_aspp_r101', 'cityscapes_pixcon_aspp_r101', 'cityscapes_pixcon_base_hr48',
                         'cityscapes_pixcon_hr48'], seeds=[0], overrides=[]),
}

# %%
import matplotlib.pyplot as plt
import torch
import numpy as np
from IPython.display import display
from ctxseg.chapter import (stack_figures, benchmark_claims, benchmark_pairs,
                            setup, train_chapter, adopt_runs, plot_pairs, trained_runs, load_model, pixel_sample, pca_2d, plot_points,
                            save_results, stats_table, by_dataset)
from ctxseg.grids import grid_table, class_iou_table, plot_losses, plot_class_iou, plot_overlays, log_series, one_piece_walls, Table, table_notes
from ctxseg.protocol import claims_table, expand_claims, judge_claims, replication_table, cue_table, claims_on, BENCHMARKS
from ctxseg.provenance import repo_root
from ctxseg.models.segmentor import method_params
from ctxseg.presets.pixel_contrast import CPU_CLAIMS

def contrast(c):
    "The loss's parameters in a preset's line (its effective ones: the preset's over the method's defaults)."
    if c.method.name != 'pixel_contrast': return '; baseline'
    m = method_params(c.method)
    return f"; pixel contrast on {m['feature']}: tau {m['temperature']}, lambda {m['loss_weight']}, warm-up {m['warmup_iters']}, memory {m['memory']}"

ch = setup('pixel_contrast', PROFILE_DEFAULTS, profile, presets, seeds, overrides, out_dir, time_budget, command, detail=contrast)

# %% [markdown]
# The `gpu` profile needs a CUDA device and the prepared dataset; without them it stops here.

# %%
ch.check_gpu()

# %% [markdown]
# ## The baseline runs
#
# The baseline rows, DeepLabV3 and its class-balanced control, are the runs of the core baselines notebook
# ({doc}`/book/results/cpu/baselines`), not retrained: a run
# folder of `runs/<profile>/baselines/<preset>/seed<k>/` is copied here when its recorded config and data
# fingerprint are exactly those this grid would train (the same check that decides whether a run is
# finished); otherwise the baseline is trained here like any other row.

# %%
reused = adopt_runs(ch, repo_root() / 'runs' / profile / 'baselines', [p for p, c in ch.cfgs.items() if c.method.name == 'none'])

# %% [markdown]
# ## Training

# %%
summary = train_chapter(ch)

# %% [markdown]
# ## Results
#
# Mean ± sample standard deviation over seeds, on the validation split, in percent, with the mean IoU without the
# benchmark's rarest class beside the mIoU. The two benchmarks share the table, not their classes.

# %%
grid_table(summary)

# %%
bench = by_dataset(ch, summary)

# %% [markdown]
# The training loss (all terms) of every run, and the weighted contrastive term alone: zero during the
# warm-up, then added to the loss. The authors report that this term barely falls while it still helps
# (issue #44 of their repository); a curve that rises after the warm-up would mean λ is too large.

# %%
#| label: fig-train-pixel-contrast-losses
#| fig-cap: Training loss (all terms; running mean over 3 logs) of DeepLabV3, its control and the two pixel-contrast rows, one line per seed and a panel per row, first on the synthetic benchmark, then on the aerial one. The contrastive term joins after the 125-iteration warm-up.
stack_figures([plot_losses(s, smooth=ch.smooth) for s in bench.values()]); plt.show()

# %%
#| label: fig-train-pixel-contrast-term
#| fig-cap: The weighted contrastive term (λ times the loss) of the seed-0 run of each pixel-contrast row, one panel per benchmark; zero during the warm-up.
fig, axs = plt.subplots(1, len(bench), figsize=(5.2 * len(bench), 3.4), squeeze=False)
for ax, (d, s) in zip(axs[0], bench.items()):
    for r in s['runs']:
        it, v = log_series(ch.out_dir / r['dir'], 'contrast')
        if it is not None and r['seed'] == min(ch.seeds): ax.plot(it, v, label=r['preset'], lw=1.2)
    ax.set_xlabel('iteration'); ax.set_ylabel('λ · contrastive loss'); ax.set_title(d, fontsize=10)
    if ax.lines: ax.legend(fontsize=8)
fig.tight_layout(); plt.show()

# %% [markdown]
# ## What the loss sees, step by step
#
# Every run logs the method's `stats` (see {doc}`/nbs/32_pixel_contrast_module`). The left panel puts the raw
# loss (before λ and the warm-up) beside `collapsed`, the value it would take if every embedding were the same
# vector. A raw loss that stays near `collapsed` has not separated the classes. The right panel shows, for the
# memory variant, how many negatives and positives each anchor had before mining (the pool) and how many the
# semi-hard draw kept.

# %%
#| label: fig-train-pixel-contrast-stats
#| fig-cap: Seed 0. Left: the raw contrastive loss (before λ and the warm-up) of each pixel-contrast row, dashed the value it would take if all embeddings were one vector. Right: the memory variant's negatives and positives per anchor, in the pool and kept by the semi-hard draw. The in-batch losses fall below their collapsed value; the memory variant's stays above its own.
fig, axs = plt.subplots(1, 2, figsize=(11, 3.6))
for r in summary['runs']:
    run, c = ch.out_dir / r['dir'], ch.cfgs[r['preset']]
    it, raw = log_series(run, 'stats', 'method.raw')
    if c.method.name != 'pixel_contrast' or r['seed'] != min(ch.seeds) or it is None: continue
    line, = axs[0].plot(it, raw, lw=1, label=f"{r['preset']}: raw")
    axs[0].plot(*log_series(run, 'stats', 'method.collapsed'), lw=1, ls='--', color=line.get_color(), label=f"{r['preset']}: collapsed")
    if not method_params(c.method)['memory']: continue
    for k, ls in (('pool_neg', '-'), ('neg', '--'), ('pool_pos', '-'), ('pos', '--')):
        axs[1].plot(*log_series(run, 'stats', f'method.{k}'), ls=ls, lw=1, label=f'{k} per anchor')
axs[0].set_xlabel('iteration'); axs[0].set_ylabel('loss (unweighted)'); axs[0].set_title(f'raw loss and collapsed value, seed {min(ch.seeds)}')
axs[1].set_xlabel('iteration'); axs[1].set_yscale('log'); axs[1].set_title('memory variant: pool and selection')
for ax in axs:
    if ax.lines: ax.legend(fontsize=8)
fig.tight_layout(); plt.show()

# %% [markdown]
# ## The claims, on both benchmarks
#
# The claims are `CPU_CLAIMS` of {doc}`/nbs/33_pixel_contrast_presets`, for the rows this grid trains: the loss
# improves the segmentation, and the memories improve on the in-batch loss. Each is judged with the protocol of
# {doc}`/nbs/11c_protocol`: on each benchmark the mean paired difference over the seeds with its 95 % t interval
# (*held* above zero, *refuted* below, else *not resolved*), on the mIoU and on the mIoU without the rarest class;
# against DeepLabV3 and again against its class-balanced control; and a claim holds only if it holds on both
# benchmarks. The second table compares the rates of runs that use the scene cue (context-use above one half), with
# McNemar's exact test on the paired seeds.

# %%
base = next((p for p, c in ch.cfgs.items() if c.method.name == 'none'), None)
variants = [p for p, c in ch.cfgs.items() if c.method.name == 'pixel_contrast']
CLAIMS = [c for c in CPU_CLAIMS if c[1] in ch.presets and c[2] in ch.presets]
judged = judge_claims(summary, CLAIMS) if CLAIMS else []
replication_table(judged) if judged else print('not in this profile: the claims need the cpu grid')

# %%
cue_table(judged) if judged else print('not in this profile')

# %% [markdown]
# On each benchmark, the claims on single classes and on boundaries as well (the synthetic benchmark's bush and
# rock, told apart by texture scale across images, the rare sign and the wire's boundary at 1 px; the aerial
# benchmark's classes are others, so there only the mIoU and the boundary score of all classes are judged):

# %%
fallback = [(f'{p} raises mIoU', base, p, [None]) for p in variants]       # the smoke profile
for t in benchmark_claims(bench, CLAIMS, fallback): display(t)

# %%
#| label: fig-train-pixel-contrast-paired
#| fig-cap: mIoU of each pixel-contrast row against DeepLabV3, seed by seed, one row of panels per benchmark: a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black.
benchmark_pairs(bench, CLAIMS, fallback, strip=('{d}_',), width=3.3); plt.show()

# %% [markdown]
# Per-class IoU, averaged over seeds (whiskers: one standard deviation), one panel per benchmark.

# %%
#| label: fig-train-pixel-contrast-class-iou
#| fig-cap: Per-class validation IoU of DeepLabV3, its class-balanced control and the pixel-contrast rows, mean over five seeds with one-standard-deviation whiskers; first the synthetic benchmark, then the aerial one.
figs = []
for d, s in bench.items(): fig = plot_class_iou(s); fig.axes[0].set_title(d, fontsize=10); figs.append(fig)
stack_figures(figs); plt.show()

# %%
for d, s in bench.items(): display(class_iou_table(s))

# %% [markdown]
# ## Qualitative results
#
# The same validation images under each row (the seed-0 run of each, when its checkpoint is on disk): image, ground
# truth, then each prediction with its wrong pixels outlined in black and its pixel accuracy in the corner. The pair
# of look-alike classes that only the scene tells apart (car and boat, duck and hen) is where a model that ignores
# the scene shows.

# %%
#| label: fig-train-pixel-contrast-overlays
#| fig-cap: Three validation images of each benchmark (rows): the image, its ground truth, then the seed-0 prediction of each row, wrong pixels outlined in black and pixel accuracy in the corner.
stack_figures([plot_overlays(s, n=3, seed=ch.overlay_seed) for s in bench.values()]); plt.show()

# %% [markdown]
# ## The embedding space, with and without the loss
#
# The paper's claim is about the *feature space*: pixels of a class pulled together, classes pushed apart.
# For each finished run with a checkpoint, the `layer4` features (the feature the loss acts on in our
# presets; the projection head is dropped at inference, so this is what the classifier sees) of up to 200
# validation pixels per class are L2-normalised and measured with `embedding_stats`
# ({doc}`/nbs/30_contrast_plumbing`): intra-class alignment (lower = tighter), inter-class uniformity (lower =
# classes further apart) and the mean cosine between class centroids. The picture is a 2-D PCA of the
# same pixels (principal components of each model's own features), for seed 0 of a baseline and of a
# pixel-contrast preset, and for the latter also of its projected 256-d embeddings.

# %%
from ctxseg.methods.common import embedding_stats

stats, points = [], {}
for r, run in trained_runs(summary):
    model, cfg, ds = load_model(run)
    s = pixel_sample(model, ds, method_params(cfg.method).get('feature', 'layer4'),
                     project=model.method.proj if model.method is not None else None)
    rec = {'preset': r['preset'], 'seed': r['seed'], 'feature': 'layer4', **embedding_stats(s['x'], s['y'])}
    stats.append(rec)
    if s['proj'] is not None: stats.append({**rec, 'feature': 'projection', **embedding_stats(s['proj'], s['y'])})
    if r['seed'] != min(ch.seeds): continue
    for key, x in (('layer4', s['x']), ('proj', s['proj'])):
        if x is not None: points[f"{r['preset']}:{key}"] = {'xy': pca_2d(x), 'y': s['y'].tolist(), 'classes': list(ds.classes)}

if stats: display(stats_table(stats, ('preset', 'feature'), ['alignment', 'uniformity', 'centroid_cosine']))

# %%
#| label: fig-train-pixel-contrast-pca
#| fig-cap: 2-D PCA of the L2-normalised layer4 features of up to 200 validation pixels per class (seed 0, coloured by class) for each row, and of the projected embeddings of the pixel-contrast rows, on both benchmarks.
if points:
    fig = plot_points(points, title=lambda name: name.replace(':proj', ': projection').replace(':layer4', ': layer4'))
    fig.suptitle(f'2-D PCA of L2-normalised pixel features (validation, seed {min(ch.seeds)})'); fig.tight_layout(); plt.show()

# %% [markdown]
# The numbers and the projected points are saved beside the executed notebook, so the results chapter
# ({doc}`/nbs/34_pixel_contrast_results`) reads them without the checkpoints (which are not committed).

# %%
if stats:
    save_results(ch, 'features', {'per_class': 200, 'images': 64, 'projection': 'PCA (torch.pca_lowrank, 2 components)',
                                  'stats': stats, 'points': points})

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
