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
# | `cpu` | `*_aspp_regcon` (the paper's reading: per-image centres of the ground-truth regions with the paper's dynamic sampling) and `*_aspp_regcon_authors` (the released path), on both benchmarks; DeepLabV3, its class-balanced control and in-batch pixel contrast are the runs of their pages, reused | synthetic v3 (192 px, 1,200 iterations) and aerial v1 (128 px, 2,200 iterations), 5 seeds | a 2-core machine, 4 to 7 minutes a run |
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
# `ctxseg run-notebooks --profile cpu region_contrast` on a CPU: 20 RegionContrast runs; the runs of DeepLabV3, its
# control and in-batch pixel contrast are copied from `runs/cpu/baselines` and `runs/cpu/pixel_contrast` when their
# pages have trained them (otherwise they are trained here as well). The wall time of each run is in the section *What
# a run costs* at the end. Finished runs are reused, so an interrupted execution resumes where it stopped
# (`--time-budget` pauses it on purpose). Version 2 of this page, whose "paper's reading" had unweighted centres, is
# kept as `book/results/cpu/v2/region_contrast.ipynb`.
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
# Each profile's defaults.

# %%
from ctxseg.chapter import SMOKE_OVERRIDES
from ctxseg.protocol import on_both
from ctxseg.presets.region_contrast import V3_ROWS
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke_regcon', 'smoke_regcon_authors'], seeds=[0, 1], overrides=SMOKE_OVERRIDES, reference=None),
    'cpu': dict(presets=on_both(['synthetic_aspp', 'synthetic_aspp_balanced', 'synthetic_aspp_pixcon_batch', *V3_ROWS]),
                seeds=[0, 1, 2, 3, 4], overrides=[], reference=None),
    'gpu': dict(presets=['cityscapes_regcon_r50', 'cityscapes_regcon_base_r50'], seeds=[0], overrides=[], reference=None),
}

# %%
from IPython.display import display, Markdown
import numpy as np
import matplotlib.pyplot as plt
import torch
from ctxseg.chapter import (stack_figures, benchmark_claims, benchmark_pairs,
                            setup, train_chapter, adopt_runs, by_dataset, plot_pairs, plot_log_panels,
                            trained_runs, load_model, pixel_sample, pca_2d, plot_points, save_results, stats_table)
from ctxseg.provenance import repo_root
from ctxseg.grids import grid_table, class_iou_table, plot_losses, plot_class_iou, plot_overlays, one_piece_walls, Table, table_notes
from ctxseg.protocol import claims_table, expand_claims, judge_claims, replication_table, cue_table, bottom_line, claims_on
from ctxseg.presets.region_contrast import CPU_CLAIMS

ch = setup('region_contrast', PROFILE_DEFAULTS, profile, presets, seeds, overrides, out_dir, time_budget, command)
ch.check_gpu()

# %% [markdown]
# ## The rows of other pages
#
# DeepLabV3 and its class-balanced control are the runs of {doc}`/book/results/cpu/baselines`, and in-batch pixel
# contrast the runs of {doc}`/book/results/cpu/pixel_contrast`: a run folder is copied here when its recorded config
# and data are exactly those this grid would train; otherwise the row is trained here like any other.

# %%
reused = adopt_runs(ch, repo_root() / 'runs' / profile / 'baselines', [p for p, c in ch.cfgs.items() if c.method.name == 'none'])
reused += adopt_runs(ch, repo_root() / 'runs' / profile / 'pixel_contrast', [p for p, c in ch.cfgs.items() if c.method.name == 'pixel_contrast'])

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
grid_table(summary)

# %%
bench = by_dataset(ch, summary)

# %%
#| label: fig-train-region-contrast-losses
#| fig-cap: Training loss (all terms: the main output, the auxiliary head and the loss method; running mean over 3 logs) of every row, one line per seed and a panel per row, first on the synthetic benchmark, then on the aerial one.
stack_figures([plot_losses(s, smooth=ch.smooth) for s in bench.values()]); plt.show()

# %%
#| label: fig-train-region-contrast-class-iou
#| fig-cap: Per-class validation IoU of every row, mean over five seeds with one-standard-deviation whiskers, one panel per benchmark.
figs = []
for d, s in bench.items(): fig = plot_class_iou(s); fig.axes[0].set_title(d, fontsize=10); figs.append(fig)
stack_figures(figs); plt.show()

# %%
for d, s in bench.items(): display(class_iou_table(s))

# %% [markdown]
# ## The claims, on both benchmarks
#
# `CPU_CLAIMS` of {doc}`/nbs/62_region_contrast_presets`, judged with the protocol of {doc}`/nbs/11c_protocol`: on each
# benchmark the mean paired difference over the seeds with its 95 % t interval, on the mIoU and on the mIoU without
# the rarest class; against the baseline and, for the claims against DeepLabV3, against its class-balanced control;
# a claim holds only if it holds on both benchmarks. Then the rates of runs that use the scene cue, and the class and
# boundary targets on each benchmark. A grid without those presets (the smoke profile) judges the released path
# against the paper's reading.

# %%
CLAIMS = [c for c in CPU_CLAIMS if c[1] in ch.presets and c[2] in ch.presets]
judged = judge_claims(summary, CLAIMS) if CLAIMS else []
replication_table(judged) if judged else print('not in this profile: the claims need the cpu grid')

# %%
Markdown(bottom_line(judged)) if judged else print('not in this profile')

# %%
cue_table(judged) if judged else print('not in this profile')

# %%
fallback = [("the released path against the paper's reading", ch.presets[0], ch.presets[-1], [None])]
for t in benchmark_claims(bench, CLAIMS, fallback): display(t)

# %%
#| label: fig-train-region-contrast-paired
#| fig-cap: mIoU seed by seed for each pair the claims compare, one row of panels per benchmark: a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black.
benchmark_pairs(bench, CLAIMS, fallback, strip=('{d}_aspp_', '{d}_'), width=2.8); plt.show()

# %% [markdown]
# ## The loss and the memory during training
#
# Every run logs the loss's own state at each logged step: the raw loss before λ, the number of centres in the
# batch, and how full the memory is (the mean over classes of the slots written; the released path starts full of
# random vectors). Mean over seeds:

# %%
#| label: fig-train-region-contrast-memory
#| fig-cap: The loss and its memory during training, mean over seeds: the raw loss before λ, the region centres per batch and the mean memory slots filled per class. On both benchmarks the released path's raw loss sits near 67 from the first steps, with under 10 centres a batch, and its memory counts as full from the start (it begins with random vectors); the paper's reading stays below 9, with about 46 centres a batch, and fills its memory by about iteration 520.
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
    if r['seed'] == min(ch.seeds) and cfg.method.name == 'region_contrast':
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
#| fig-cap: Three validation images of each benchmark (rows): the image, its ground truth, then the seed-0 prediction of each row, wrong pixels outlined in black and pixel accuracy in the corner.
stack_figures([plot_overlays(s, n=3, seed=ch.overlay_seed) for s in bench.values()]); plt.show()

# %% [markdown]
# ## What a run costs
#
# The wall time of every run trained in one piece (a run resumed after a pause is left out: its time is split), per
# benchmark, on the machine the runs record; the rows of other pages are their pages' runs.

# %%
Table(['benchmark', 'runs', 'fastest', 'median', 'slowest'],
      [[d, str(len(w)), f'{min(w):.0f} s', f'{np.median(w):.0f} s', f'{max(w):.0f} s']
       for d, w in ((d, one_piece_walls(s)) for d, s in bench.items()) if w],
      table_notes(summary), title='wall time of a run')
