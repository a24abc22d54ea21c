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
# | `cpu` | `synthetic_aspp` (the baseline runs, reused) vs `synthetic_aspp_pixcon_batch` (in-batch anchors, the authors' released recipe; λ = 0.1, and `_l05`, `_l01` with λ = 0.05, 0.01) and `synthetic_aspp_pixcon` (the paper's memories with semi-hard mining) | synthetic v2, 192 px, 1000 iterations, 5 seeds | this 2-core machine, about five minutes a run |
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
# `ctxseg run-notebooks --profile cpu pixel_contrast` on a CPU: 20 pixel-contrast runs of 1,000 iterations at 192 px;
# the five DeepLabV3 runs are copied from `runs/cpu/baselines` when the baselines notebook has trained them
# (otherwise they are trained here, about 20 minutes more). On the 2-core Intel Xeon this page was executed on, a run
# took about 5 minutes (4.5 to 6.2) and the notebook, feature metrics included, 1 h 47 min: about 1 h 45 min in all.
# Finished runs are reused, so an interrupted execution resumes where it stopped (`--time-budget` pauses it on
# purpose).
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
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke', 'smoke_pixcon'], seeds=[0, 1], overrides=SMOKE_OVERRIDES),
    'cpu': dict(presets=['synthetic_aspp', 'synthetic_aspp_pixcon_batch', 'synthetic_aspp_pixcon_batch_l05',
                         'synthetic_aspp_pixcon_batch_l01', 'synthetic_aspp_pixcon'], seeds=[0, 1, 2, 3, 4], overrides=[]),
    'gpu': dict(presets=['cityscapes_pixcon_base_aspp_r101', 'cityscapes_pixcon_aspp_r101', 'cityscapes_pixcon_base_hr48',
                         'cityscapes_pixcon_hr48'], seeds=[0], overrides=[]),
}

# %%
import matplotlib.pyplot as plt
import torch
from ctxseg.chapter import (setup, train_chapter, adopt_runs, plot_pairs, trained_runs, load_model, pixel_sample, pca_2d, plot_points,
                            save_results)
from ctxseg.grids import grid_table, class_iou_table, plot_losses, plot_class_iou, plot_overlays, log_series
from ctxseg.protocol import claims_table, expand_claims
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
# The baseline rows are the runs of the core baselines notebook ({doc}`/book/results/cpu/baselines`), not retrained: a run
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
# Mean ± sample standard deviation over seeds, on the validation split, in percent.

# %%
grid_table(summary)

# %% [markdown]
# The training loss (all terms) of every run, and the weighted contrastive term alone: zero during the
# warm-up, then added to the loss. The authors report that this term barely falls while it still helps
# (issue #44 of their repository); a curve that rises after the warm-up would mean λ is too large.

# %%
#| label: fig-train-pixel-contrast-losses
#| fig-cap: Training loss (all terms; running mean over 3 logs) of DeepLabV3 and the four pixel-contrast rows, one line per seed. The contrastive term joins after the 125-iteration warm-up, hence the step there, larger with λ and largest for the memory variant.
plot_losses(summary, smooth=ch.smooth); plt.show()

# %%
#| label: fig-train-pixel-contrast-term
#| fig-cap: The weighted contrastive term (λ times the loss) of every run: zero during the warm-up, then a level set mostly by λ, from about 0.08 for λ = 0.01 to about 1.2 for the memory variant, falling slowly afterwards.
fig, ax = plt.subplots(figsize=(6, 3.5))
for r in summary['runs']:
    it, v = log_series(ch.out_dir / r['dir'], 'contrast')
    if it is not None: ax.plot(it, v, label=r['dir'], lw=1)
ax.set_xlabel('iteration'); ax.set_ylabel('λ · contrastive loss'); ax.set_title('the contrastive term')
if ax.lines: ax.legend(fontsize=7)
plt.show()

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
    if ax.lines: ax.legend(fontsize=7)
fig.tight_layout(); plt.show()

# %% [markdown]
# ## The claims, seed by seed
#
# The claims are `CPU_CLAIMS` of {doc}`/nbs/33_pixel_contrast_presets`: the loss improves the segmentation
# (mIoU), and on benchmark v2 the places where cross-image structure should show: bush and rock (one colour law,
# told apart by texture scale across images), the rare sign, and the wire's boundary at 1 px; and the memories
# improve on the in-batch loss. Each is judged with the protocol of {doc}`/nbs/11_runner` (paired seeds, 95 % t
# interval; *not resolved* comes with the smallest effect the seeds could detect). A grid without those presets
# (the smoke profile) judges each variant's mIoU against its baseline.

# %%
base = next((p for p, c in ch.cfgs.items() if c.method.name == 'none'), None)
variants = [p for p, c in ch.cfgs.items() if c.method.name == 'pixel_contrast']
claims = expand_claims(summary, CPU_CLAIMS) or expand_claims(summary, [(f'{p} raises mIoU', base, p, [None]) for p in variants])
claims_table(summary, claims) if claims else print('no baseline in this grid: nothing to compare')

# %%
#| label: fig-train-pixel-contrast-paired
#| fig-cap: mIoU of each pixel-contrast row against DeepLabV3, seed by seed: a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black. The in-batch loss raises mIoU on all five seeds at every λ, the more the larger λ; the memory variant leaves it about where it was.
plot_pairs(summary, [(base, p) for p in variants] if claims else [], strip=(), width=3.3); plt.show()

# %% [markdown]
# Per-class IoU, averaged over seeds (whiskers: one standard deviation).

# %%
#| label: fig-train-pixel-contrast-class-iou
#| fig-cap: Per-class validation IoU of DeepLabV3 and the pixel-contrast rows, mean over five seeds with one-standard-deviation whiskers. The in-batch loss at λ = 0.1 and 0.05 lifts sign from near zero to about 31 and 19 %; no other class moves by more than about six points.
plot_class_iou(summary); plt.show()

# %%
class_iou_table(summary)

# %% [markdown]
# ## Qualitative results
#
# The same validation images under the baseline and the pixel-contrast model (the seed-0 run of each,
# when its checkpoint is on disk): image, ground truth, then each prediction with its wrong pixels outlined in
# black and its pixel accuracy in the corner. The look-alike cars and boats are where a class-structured feature
# space should show.

# %%
#| label: fig-train-pixel-contrast-overlays
#| fig-cap: Four validation images (rows): the image, its ground truth, then the seed-0 prediction of DeepLabV3 and of each pixel-contrast row, wrong pixels outlined in black and pixel accuracy in the corner. On these images the five predictions are within two points of pixel accuracy of each other.
plot_overlays(summary, n=4, seed=ch.overlay_seed); plt.show()

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

import pandas as pd
tab = pd.DataFrame(stats)
if len(tab):
    agg = tab.groupby(['preset', 'feature'])[['alignment', 'uniformity', 'centroid_cosine']].agg(['mean', 'std']).round(3)
    display(agg)

# %%
#| label: fig-train-pixel-contrast-pca
#| fig-cap: 2-D PCA of the L2-normalised layer4 features of up to 200 validation pixels per class (seed 0, coloured by class) for DeepLabV3 and each pixel-contrast row, and of the projected embeddings of the latter. The in-batch rows at λ = 0.1 and 0.05 show tighter, better separated class clusters than DeepLabV3.
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
