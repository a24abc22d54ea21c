# %% [markdown]
# # RegionContrast: training
# > DeepLabV3 against the same network with RegionContrast (the paper's reading and the released code's path), and against in-batch pixel contrast, over several seeds: results, the claims judged, the loss and the memory during training, the feature space and the centres in memory; for the smoke, cpu and gpu profiles.
#
# - skip_exec: true

# %% [markdown]
# This notebook trains the loss of {doc}`/nbs/61_region_contrast_module` {cite:p}`hu2021regioncontrast`. It is a
# *training notebook*. This page is the notebook executed in its cpu profile; its clean source is
# `nbs/train/region_contrast.ipynb`, which papermill runs for any profile.
#
# | profile | presets | data | where it runs |
# |---|---|---|---|
# | `smoke` | `smoke_regcon`, `smoke_regcon_authors`, a few dozen iterations | synthetic, 32 px | CI, seconds |
# | `cpu` | `synthetic_aspp_regcon` (the paper's reading), `synthetic_aspp_regcon_authors` (the released path); DeepLabV3 and in-batch pixel contrast are the committed runs of their chapters | synthetic v2, 192 px, 1000 iterations, 5 seeds | a 2-core machine, minutes a run |
# | `gpu` | `cityscapes_regcon_r50` and its baseline `cityscapes_regcon_base_r50` (the released recipe); `ade20k_regcon_r50`, `coco_stuff10k_regcon_r50` by name (not released by the authors) | Cityscapes, ADE20K, COCO-Stuff-10k | a CUDA machine with the datasets under `data/` |
#
# The gpu presets build the authors' networks to the tensor and follow their recipes field by field ({doc}`/nbs/15_convert`,
# {doc}`/nbs/16_recipes`; the table of this chapter's presets is in {doc}`/nbs/62_region_contrast_presets`). Before a GPU run, `ctxseg rehearse cityscapes_regcon_r50` takes two full-size steps
# on a CPU ({doc}`/nbs/17_rehearse`, where the *GPU readiness* table gives each preset's FLOPs and memory). A model trained with the authors' code evaluates through ctxseg: `ctxseg eval cityscapes_regcon_r50 --weights authors:region_contrast=<file>`.
#
# To run it:
#
# ```
# ctxseg run-notebooks --profile cpu region_contrast           # -> book/results/cpu/region_contrast.ipynb
# ctxseg run-notebooks --profile gpu region_contrast --time-budget 14400
# ```
#
# ```{admonition} Reproduce this page
# `ctxseg run-notebooks --profile cpu region_contrast` on a CPU: 10 runs of 1,000 iterations at 192 px; the DeepLabV3
# and in-batch pixel-contrast rows are the committed runs of their chapters and are not retrained. On a 2-core AMD
# EPYC a run took 4 to 6 minutes (about 4½ for the released path, 5 for the paper's reading) and the whole notebook,
# feature metrics included, 48 minutes: about 50 minutes in all. Finished runs are reused, so an interrupted
# execution resumes where it stopped (`--time-budget` pauses it on purpose).
# ```

# %% [markdown]
# The parameters (papermill replaces them; `None` means the profile's default): `profile`, `presets`, `seeds`,
# `overrides` (applied to every preset), `out_dir` (default `runs/<profile>/region_contrast`), `time_budget` (seconds; 0:
# no limit) and `command` (how this execution was started).

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
# Each profile's defaults; `reference` names the grid whose runs supply the DeepLabV3 rows.

# %%
from ctxseg.chapter import SMOKE_OVERRIDES
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke_regcon', 'smoke_regcon_authors'], seeds=[0, 1], overrides=SMOKE_OVERRIDES, reference=None),
    'cpu': dict(presets=['synthetic_aspp_regcon', 'synthetic_aspp_regcon_authors'],
                seeds=[0, 1, 2, 3, 4], overrides=[], reference='book/results/cpu/baselines'),
    'gpu': dict(presets=['cityscapes_regcon_r50', 'cityscapes_regcon_base_r50'], seeds=[0], overrides=[], reference=None),
}

# %%
from IPython.display import display
import matplotlib.pyplot as plt
import torch
from ctxseg.chapter import (setup, train_chapter, reference_rows, committed_rows, with_rows, plot_pairs, plot_log_panels,
                            trained_runs, load_model, pixel_sample, pca_2d, plot_points, save_results, stats_table)
from ctxseg.grids import grid_table, class_iou_table, plot_losses, plot_class_iou, plot_overlays
from ctxseg.protocol import claims_table, expand_claims
from ctxseg.presets.region_contrast import CPU_CLAIMS

ch = setup('region_contrast', PROFILE_DEFAULTS, profile, presets, seeds, overrides, out_dir, time_budget, command)
ch.check_gpu()

# %% [markdown]
# ## The reference rows
#
# The DeepLabV3 runs of {doc}`/book/results/cpu/baselines` stand for the baseline when they are exactly the runs this
# grid would train (`load_reference` checks every run, and that the RegionContrast rows differ from
# `synthetic_aspp` in the method only). The in-batch pixel-contrast runs of {doc}`/book/results/cpu/pixel_contrast`
# join them for the comparison of regions with pixels: the same baseline, the same recipe, another loss.

# %%
reference = reference_rows(ch, may_differ=('method.name', 'method.params'))
pixcon = committed_rows(ch, 'pixel_contrast', 'synthetic_aspp_pixcon_batch')

# %% [markdown]
# ## Training

# %%
summary = train_chapter(ch, reload=True)            # reloaded: each run with the commit it was trained at

# %% [markdown]
# ## Results
#
# Mean ± sample standard deviation over seeds on the validation split, in percent; then the training loss of every
# run (all terms: the main output, the auxiliary head and the region contrast) and the per-class IoU.

# %%
merged = with_rows(summary, (reference, 'synthetic_aspp'), (pixcon, 'synthetic_aspp_pixcon_batch'))
grid_table(merged)

# %%
#| label: fig-train-region-contrast-losses
#| fig-cap: Training loss (all terms: the main output, the auxiliary head and the region contrast; running mean over 3 logs) of the paper's reading and of the released path, one line per seed. The paper's reading falls steadily; the released path's rises from about 3 to 6 or 7 within 300 iterations and stays there.
plot_losses(summary, smooth=ch.smooth); plt.show()

# %%
#| label: fig-train-region-contrast-class-iou
#| fig-cap: Per-class validation IoU of the two RegionContrast rows, mean over five seeds with one-standard-deviation whiskers. They are within about a point of each other on every class but sign, the rarest, where the paper's reading reaches about 8 % and the released path about 3 %.
plot_class_iou(summary); plt.show()

# %%
class_iou_table(summary)

# %% [markdown]
# ## The claims, seed by seed
#
# `CPU_CLAIMS` of {doc}`/nbs/62_region_contrast_presets`, judged with the protocol of {doc}`/nbs/11_runner` (paired
# seeds, a 95 % t interval; *not resolved* comes with the smallest effect the seeds could detect). A grid without
# those presets (the smoke profile) judges the released path against the paper's reading.

# %%
claims = expand_claims(merged, CPU_CLAIMS) or expand_claims(merged, [("the released path against the paper's reading", ch.presets[0], ch.presets[-1], [None])])
claims_table(merged, claims) if claims else print('none of the claims has both of its rows in this grid')

# %%
#| label: fig-train-region-contrast-paired
#| fig-cap: mIoU seed by seed for each pair the claims compare (DeepLabV3 and in-batch pixel contrast are the committed runs of their chapters): a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black. The paper's reading beats DeepLabV3 on all five seeds and falls short of in-batch pixel contrast on all five.
plot_pairs(merged, claims); plt.show()

# %% [markdown]
# ## The loss and the memory during training
#
# Every run logs the loss's own state at each logged step: the raw loss before λ, the number of centres in the
# batch, and how full the memory is (the mean over classes of the slots written; the released path starts full of
# random vectors). Mean over seeds:

# %%
#| label: fig-train-region-contrast-memory
#| fig-cap: The loss and its memory during training, mean over seeds: the raw loss before λ, the region centres per batch and the mean memory slots filled per class. The released path's raw loss climbs to about 60 with under 10 centres a batch; the paper's reading stays below 10 with about 46 and fills its memory by iteration 500.
plot_log_panels(summary, [('method.raw', 'raw loss (before λ)'), ('method.centres', 'centres per batch'),
                          ('method.filled', 'mean filled slots per class')], panel=(3.6, 3.0))
plt.show()

# %% [markdown]
# ## The feature space and the centres in memory
#
# From the checkpoints of the runs (not committed; the numbers are saved beside the executed notebook): for every
# trained model, up to 200 validation pixels per class of the head's representation `rep` (the feature the loss
# acts on, and what the classifier sees), L2-normalised and measured with `embedding_stats`
# ({doc}`/nbs/30_contrast_plumbing`): alignment (lower: tighter classes), uniformity (lower: more spread) and the
# mean cosine between class centroids {cite:p}`wang2020hypersphere`; and for the RegionContrast runs of the first
# seed, a 2-D PCA of the centres held in the memory at the end of training, coloured by class.

# %%
from ctxseg.methods.common import embedding_stats

stats, points = [], {}
for r, run in trained_runs(summary):
    model, cfg, ds = load_model(run)
    s = pixel_sample(model, ds, 'rep')
    stats.append({'preset': r['preset'], 'seed': r['seed'], 'feature': 'rep', **embedding_stats(s['x'], s['y'])})
    if r['seed'] == min(ch.seeds) and model.method is not None:
        m = model.method
        ok = m.valid()
        E = m.queues.permute(0, 2, 1)[ok]
        lab = torch.arange(m.num_classes)[:, None].expand_as(ok)[ok]
        g = torch.Generator().manual_seed(0)
        pick = torch.randperm(len(lab), generator=g)[:1600]
        points[r['preset']] = {'xy': pca_2d(E[pick]), 'y': lab[pick].tolist(), 'classes': list(ds.classes)}

if stats:
    display(stats_table(stats, 'preset', ['alignment', 'uniformity', 'centroid_cosine']))

# %%
#| label: fig-train-region-contrast-centres
#| fig-cap: The centres held in memory at the end of training, first seed, projected on their first two principal components and coloured by class, one panel per preset: the paper's reading against the released path.
if points:
    plot_points(points, title=lambda name: f'{name}: centres in memory (PCA)')
    plt.show()

# %%
if stats:
    save_results(ch, 'features', {'per_class': 200, 'images': 64, 'projection': 'PCA (torch.pca_lowrank, 2 components)',
                                  'stats': stats, 'points': points})

# %% [markdown]
# ## Qualitative results
#
# Validation images under each preset (the seed-0 runs whose checkpoints are on disk): image, ground truth, then
# each prediction with its wrong pixels outlined.

# %%
#| label: fig-train-region-contrast-overlays
#| fig-cap: Four validation images (rows): the image, its ground truth, then the seed-0 prediction of each RegionContrast row, wrong pixels outlined in black and pixel accuracy in the corner. On these images the two rows are within four points of pixel accuracy of each other.
plot_overlays(summary, n=4, seed=ch.overlay_seed); plt.show()
