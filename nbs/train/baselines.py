# %% [markdown]
# # Core baselines
# > FCN, PSPNet, DeepLabV3 and OCRNet over several seeds: results table, loss curves, per-class IoU and qualitative overlays, for the smoke, cpu and gpu profiles.
#
# - skip_exec: true

# %% [markdown]
# This notebook trains the four context baselines that every paper in this book builds on, each over several seeds,
# and shows what came out. It is a *training notebook*: neither `nbdev_test` nor the book runs it, papermill does,
# for a profile. This page is the notebook executed in its cpu profile; its clean source is
# `nbs/train/baselines.ipynb`, which papermill runs for any profile.
#
# | profile | presets | data | where it runs |
# |---|---|---|---|
# | `smoke` | `smoke` (a tiny FCN), a few dozen iterations | synthetic, 32 px | CI, every submission, seconds |
# | `cpu` | FCN, PSPNet, DeepLabV3, OCRNet and DeepLabV3 with a class-balanced CE, on both benchmarks, 5 seeds each | synthetic v3 (192 px, 1,200 iterations) and aerial v1 (128 px, 2,200 iterations) | this 2-core machine, 4 to 6 minutes a run |
# | `gpu` | `cityscapes_fcn_r50`, `cityscapes_psp_r101`, `cityscapes_aspp_r101`, `cityscapes_ocr_hr48` | Cityscapes, 512×1024 crops, 40k iterations | a CUDA machine with Cityscapes prepared under `data/cityscapes`; it cannot run on the CPU machine the book is built on |
#
# In the cpu profile every preset runs on both built-in benchmarks, the street scenes of {doc}`/nbs/02_synthetic`
# (presets `synthetic_*`) and the farmland seen from above of {doc}`/nbs/02b_aerial` (`aerial_*`), so that every
# claim the later chapters make can be asked to replicate. The fifth row, `*_aspp_balanced`, is DeepLabV3 trained
# with ENet's class weights in the cross-entropy ({doc}`/nbs/05_losses`): the control every loss method is judged
# against a second time, so that a verdict can tell "the method helped" from "any rebalancing of the classes would
# have helped". Versions 1 and 2 of the synthetic benchmark ran the four heads alone; their pages are kept under
# `book/results/cpu/v1` and `book/results/cpu/v2` and are never mixed with these runs.
#
# The gpu presets build the authors' networks to the tensor and follow their recipes field by field ({doc}`/nbs/15_convert`,
# {doc}`/nbs/16_recipes`; the table of these presets is in {doc}`/nbs/16_recipes`). Before a GPU run, `ctxseg rehearse cityscapes_psp_r101` takes two full-size steps
# on a CPU ({doc}`/nbs/17_rehearse`, where the *GPU readiness* table gives each preset's FLOPs and memory).
#
# ```
# ctxseg run-notebooks --profile cpu baselines                       # -> book/results/cpu/baselines.ipynb
# ctxseg run-notebooks --profile gpu baselines --time-budget 14400   # 4-hour chunks: run it again to resume
# papermill nbs/train/baselines.ipynb out.ipynb -k python3 -p profile cpu -p time_budget 3600
# ```
#
# ```{admonition} Reproduce this page
# `ctxseg run-notebooks --profile cpu baselines` on a CPU: 50 runs. The section *What a run costs* at the end gives
# the time each run took on the machine this page was executed on, read from the runs themselves. Finished runs are
# reused, so an interrupted execution resumes where it stopped (`--time-budget` pauses it on purpose).
# ```
#
# With a `time_budget` (seconds) the run in progress checkpoints and stops cleanly when the budget is
# spent, and the next execution with the same parameters picks up from that checkpoint; finished runs are
# never trained twice.

# %% [markdown]
# The parameters (papermill replaces them; `None` means the profile's default, in the next cell): the
# `profile`; the `presets` to train and the `seeds` of each; `overrides`, a list of `key.sub=value`
# strings applied to every preset after the profile's own; `out_dir`, under which each run gets
# `<preset>/seed<k>/` (relative to the checkout; default `runs/<profile>/baselines`); `time_budget`, the seconds
# this execution may train (0: no limit); and `command`, how the execution was started, which
# `ctxseg run-notebooks` fills in and every table repeats.

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
# Each profile's defaults. The smoke settings are chosen so that the loss falls clearly within the few
# iterations CI can afford (a larger learning rate than the preset's and a log line per iteration); CI
# checks exactly that, on every seed.

# %%
from ctxseg.chapter import SMOKE_OVERRIDES
from ctxseg.protocol import on_both
from ctxseg.configs import BASELINE_CLAIMS
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke'], seeds=[0, 1], overrides=SMOKE_OVERRIDES),
    'cpu': dict(presets=on_both(['synthetic_fcn', 'synthetic_psp', 'synthetic_aspp', 'synthetic_ocr', 'synthetic_aspp_balanced']),
                seeds=[0, 1, 2, 3, 4], overrides=[]),
    'gpu': dict(presets=['cityscapes_fcn_r50', 'cityscapes_psp_r101', 'cityscapes_aspp_r101', 'cityscapes_ocr_hr48'],
                seeds=[0], overrides=[]),
}

# %%
import matplotlib.pyplot as plt
import torch
import numpy as np
from IPython.display import display, Markdown
from ctxseg.chapter import stack_figures, setup, train_chapter, by_dataset, plot_pairs
from ctxseg.grids import (grid_table, class_iou_table, class_targets_table, recipe_findings, convergence_table, one_piece_walls,
                          plot_losses, plot_class_iou, plot_overlays, Table, table_notes)
from ctxseg.protocol import judge_claims, replication_table, cue_table, bottom_line, BENCHMARKS

ch = setup('baselines', PROFILE_DEFAULTS, profile, presets, seeds, overrides, out_dir, time_budget, command)

# %% [markdown]
# The `gpu` profile needs a CUDA device and the prepared dataset; without them it stops here with a
# message rather than half-way through the grid.

# %%
ch.check_gpu()

# %% [markdown]
# ## Training
#
# One folder per preset and seed. Runs finished by an earlier execution are reused, a paused run is
# resumed, and `summary.json` in `out_dir` records every run's status and metrics.

# %%
summary = train_chapter(ch)

# %% [markdown]
# ## Results
#
# Mean ± sample standard deviation over seeds, on the validation split, in percent: mIoU (mean
# intersection-over-union over classes), the same mean without the rarest class of the benchmark (sign on the
# synthetic scenes, hen on the aerial ones), aAcc (pixel accuracy) and mAcc (mean per-class accuracy). The two
# benchmarks share the table but not their classes: compare rows within a benchmark.

# %%
grid_table(summary)

# %% [markdown]
# Each benchmark on its own, for the tables and figures below that show one list of classes:

# %%
bench = by_dataset(ch, summary)
{d: s['presets'] for d, s in bench.items()}

# %% [markdown]
# ## The first target: every baseline learns every class
#
# The recipe of each benchmark was fixed on these baselines before any method of the five papers ran on it
# ({doc}`/nbs/02_synthetic`, {doc}`/nbs/02b_aerial`): every class at least 20 IoU on average over the seeds, and no
# run below 10, for each head. Per benchmark, the lowest class of each row on average and in a single run, and the
# row's context-use score: the share of the pixels of the two classes that only the scene tells apart (car and boat,
# duck and hen) whose predicted class flips when the scene cue is swapped (`ctxseg.metrics`), 0 for a model that
# ignores the cue and 1 for one that reads it everywhere.

# %%
for d, s in bench.items(): display(class_targets_table(s))

# %%
for d, s in bench.items(): display(Markdown(f'**{d}.** ' + recipe_findings(s)))

# %% [markdown]
# Per-class IoU, averaged over seeds (whiskers: one standard deviation). The methods of the later parts
# claim their gains on the classes that look alike locally, on thin structures and on rare classes; this
# is the baseline they have to beat, class by class.

# %%
#| label: fig-train-baselines-class-iou
#| fig-cap: Per-class validation IoU of the five rows, one panel per benchmark, mean over the seeds with one-standard-deviation whiskers.
figs = []
for d, s in bench.items(): fig = plot_class_iou(s); fig.axes[0].set_title(d, fontsize=10); figs.append(fig)
stack_figures(figs); plt.show()

# %% [markdown]
# The same numbers as tables:

# %%
for d, s in bench.items(): display(class_iou_table(s))

# %% [markdown]
# ## The second target: converged runs
#
# Every run is evaluated at 80 % of its schedule as well as at the end. A recipe counts as converged when the mean
# change over the seeds between the two is at most one mIoU point; the table gives the mean change with the smallest
# and the largest single change.

# %%
for d, s in bench.items(): display(convergence_table(s))

# %% [markdown]
# The training loss (the sum of all loss terms, the auxiliary head's included) of every run, a panel per row; the
# shaded band is the last 20 % of the iterations.

# %%
#| label: fig-train-baselines-losses
#| fig-cap: Training loss (all terms, the auxiliary head included; running mean over 3 logs), one line per seed and a panel per row, first the synthetic rows, then the aerial ones; the shaded band is the last 20 % of the iterations.
stack_figures([plot_losses(s, smooth=ch.smooth, tail=0.2) for s in bench.values()]); plt.show()

# %% [markdown]
# ## Qualitative results
#
# The same validation images under every row (the seed-0 run of each, when its checkpoint is on disk): image, ground
# truth, then each prediction with its wrong pixels outlined in black and its pixel accuracy in the corner. Look at
# the pair that only the scene decides: a model that does not read the scene gives a whole object the wrong one of the
# two classes, or splits it between them.

# %%
#| label: fig-train-baselines-overlays
#| fig-cap: Validation images (rows), first of the synthetic benchmark, then of the aerial one: the image, its ground truth, then the seed-0 prediction of each row, wrong pixels outlined in black and pixel accuracy in the corner.
stack_figures([plot_overlays(s, n=3, seed=ch.overlay_seed) for s in bench.values()]); plt.show()

# %% [markdown]
# ## Boundaries
#
# The boundary F-score at a tolerance of 1 and 2 pixels (`BF@1`, `BF@2`: a predicted boundary pixel counts if a
# true one lies within the tolerance, and vice versa) and the boundary IoU with a band of 2 % of the image
# diagonal (`bIoU@0.02`), each the mean over classes; mean ± sample std over seeds, in percent. These are the
# metrics the local-distribution and boundary-aware methods claim to move.

# %%
BOUNDARY = [k for k in ('BF@1', 'BF@2', 'bIoU@0.02') if any(k in r.get('metrics', {}) for r in summary['runs'])]
grid_table(summary, metrics=BOUNDARY)

# %% [markdown]
# ## The claims these rows make, on both benchmarks
#
# Every preset shares each seed's data order and the initial weights of the trunk and the auxiliary head
# (`ctxseg.models.segmentor.build_model` builds each part from its own seed), so the rows form paired samples. Two
# kinds of claim are judged here with the protocol of {doc}`/nbs/11c_protocol`: that each context head beats a plain
# FCN, and what the class-balanced CE changes in DeepLabV3. Each is judged on each benchmark (the mean paired
# difference over seeds with its 95 % t interval, *held* when the interval is above zero, *refuted* when below, else
# *not resolved*), and holds only if it holds on both; the second table compares the rates of runs that use the scene
# cue, with McNemar's exact test on the paired seeds.

# %%
HEADS = {'psp': 'PSPNet', 'aspp': 'DeepLabV3', 'ocr': 'OCRNet'}
judged = judge_claims(summary, BASELINE_CLAIMS) if all(p.split('_', 1)[0] in BENCHMARKS for p in ch.presets) else []
replication_table(judged) if judged else print('not in this profile: the claims need the cpu grid')

# %% [markdown]
# The same verdicts in words, printed from the table above:

# %%
Markdown(bottom_line(judged)) if judged else print('not in this profile')

# %%
cue_table(judged) if judged else print('not in this profile')

# %% [markdown]
# Seed by seed, each context head against FCN on each benchmark:

# %%
#| label: fig-train-baselines-paired
#| fig-cap: mIoU of each context head against FCN, seed by seed, one row of panels per benchmark: a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black.
figs = []
for d, s in bench.items():
    pairs = [(f'{d}_fcn', f'{d}_{h}') for h in HEADS if {f'{d}_fcn', f'{d}_{h}'} <= set(s['presets'])]
    if pairs: figs.append(plot_pairs(s, pairs, strip=(f'{d}_',), width=3.2))
stack_figures(figs); plt.show()

# %% [markdown]
# ## What a run costs
#
# The wall time of every run trained in one piece (a run resumed after a pause is left out: its time is split),
# per benchmark, on the machine the runs record.

# %%
Table(['benchmark', 'runs', 'fastest', 'median', 'slowest'],
      [[d, str(len(w)), f'{min(w):.0f} s', f'{np.median(w):.0f} s', f'{max(w):.0f} s']
       for d, w in ((d, one_piece_walls(s)) for d, s in bench.items()) if w],
      table_notes(summary), title='wall time of a run')
