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
# | `cpu` | `synthetic_fcn`, `synthetic_psp`, `synthetic_aspp`, `synthetic_ocr`, 5 seeds each | synthetic v2, 192 px | this 2-core machine, about 4 minutes a run |
# | `gpu` | `cityscapes_fcn_r50`, `cityscapes_psp_r101`, `cityscapes_aspp_r101`, `cityscapes_ocr_hr48` | Cityscapes, 512×1024 crops, 40k iterations | a CUDA machine with Cityscapes prepared under `data/cityscapes`; it cannot run on the CPU machine the book is built on |
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
# `ctxseg run-notebooks --profile cpu baselines` on a CPU: 20 runs of 1,000 iterations at 192 px. On the 2-core Intel
# Xeon this page was executed on, a run took about 4 minutes (from 3.6 for FCN to 4.3 for OCRNet) and the whole
# notebook 79 minutes: about 1 h 20 min in all (one DeepLabV3 run, retrained by the Contextrast notebook on a 2-core
# AMD EPYC, took about 3 minutes there). Finished runs are reused, so an interrupted execution resumes where it
# stopped (`--time-budget` pauses it on purpose).
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
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke'], seeds=[0, 1], overrides=SMOKE_OVERRIDES),
    'cpu': dict(presets=['synthetic_fcn', 'synthetic_psp', 'synthetic_aspp', 'synthetic_ocr'], seeds=[0, 1, 2, 3, 4], overrides=[]),
    'gpu': dict(presets=['cityscapes_fcn_r50', 'cityscapes_psp_r101', 'cityscapes_aspp_r101', 'cityscapes_ocr_hr48'],
                seeds=[0], overrides=[]),
}

# %%
import matplotlib.pyplot as plt
import torch
from ctxseg.chapter import setup, train_chapter, trained_runs, load_model, plot_pairs
from ctxseg.grids import grid_table, class_iou_table, plot_losses, plot_class_iou, plot_overlays, loss_trend, Table, table_notes
from ctxseg.protocol import claims_table, recipe_targets

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
# intersection-over-union over classes), aAcc (pixel accuracy) and mAcc (mean per-class accuracy).

# %%
grid_table(summary)

# %% [markdown]
# ## Convergence
#
# The training loss (the sum of all loss terms, the auxiliary head's included) of every run. Seeds that
# end far apart, or a curve still falling steeply at the end, mean the schedule is too short for the
# table to be trusted. The shaded window is the last 20 % of the iterations; the table below fits a line
# through the loss in that window (`ctxseg.runner.loss_trend`) and gives its rise over the window as a
# fraction of the loss there: a converged run is within a few per cent of zero.

# %%
#| label: fig-train-baselines-losses
#| fig-cap: Training loss (all terms, the auxiliary head included; running mean over 3 logs) of FCN, PSPNet, DeepLabV3 and OCRNet, one line per seed; the shaded band is the last 20 % of the iterations, the window the table below judges. The seeds of each preset stay close and level off by the end.
plot_losses(summary, smooth=ch.smooth, tail=0.2); plt.show()

# %%
trend = {(r['preset'], r['seed']): loss_trend(ch.out_dir / r['dir']) for r in summary['runs'] if 'metrics' in r}
Table(['preset', 'seed', 'window', 'loss there', 'change over it'],
      [[p, s, f"{t['start']:.0f}–{t['end']:.0f}", f"{t['level']:.3f}", f"{100 * t['change']:+.1f} %"] for (p, s), t in trend.items()],
      table_notes(summary), title='the training loss over the last 20 % of the iterations')

# %% [markdown]
# Per-class IoU, averaged over seeds (whiskers: one standard deviation). The methods of the later parts
# claim their gains on the classes that look alike locally, on thin structures and on rare classes; this
# is the baseline they have to beat, class by class.

# %%
#| label: fig-train-baselines-class-iou
#| fig-cap: Per-class validation IoU of the four baselines, mean over five seeds with one-standard-deviation whiskers. The context heads lift car and boat far above FCN, whose seeds scatter widely on them; sign, the rarest class, stays below 30 % for every head.
plot_class_iou(summary); plt.show()

# %% [markdown]
# ## Qualitative results
#
# The same validation images under every baseline (the seed-0 run of each, when its checkpoint is on
# disk): image, ground truth, then each prediction with its wrong pixels outlined in black and its pixel
# accuracy in the corner. On the synthetic benchmark, look at the cars and boats: a model without enough
# context tends to give a whole object the wrong one of the two classes, or to split an object between them.

# %%
#| label: fig-train-baselines-overlays
#| fig-cap: Four validation images (rows): the image, its ground truth, then the seed-0 prediction of each baseline, wrong pixels outlined in black and pixel accuracy in the corner. FCN splits or mislabels cars and boats that the context heads get right.
plot_overlays(summary, n=4, seed=ch.overlay_seed); plt.show()


# %% [markdown]
# ## Does each model read the horizon?
#
# On the synthetic benchmark, car and boat differ only by the horizon far above them. `swap_horizon` repaints the
# top of the image with red and blue exchanged (a warm horizon becomes cool and back); a model that reads the scene
# from the horizon swaps its car and boat predictions, one that guesses from the object alone does not. Per run, on
# the first 64 validation images: the share of car and boat pixels predicted right, and the share whose car/boat
# prediction the swap turns into the other class.

# %%
def horizon_probe(n=64):
    from ctxseg.synthetic import swap_horizon, CAR, BOAT
    from ctxseg.data import build_dataset
    from ctxseg.engine import infer
    c0 = next(iter(ch.cfgs.values()))
    if c0.data.dataset != 'synthetic': return None
    ds = build_dataset(c0.data, 'val'); samples = [ds[i] for i in range(min(n, len(ds)))]
    x, y = (torch.stack([s[k] for s in samples]) for k in ('image', 'label'))
    obj = (y == CAR) | (y == BOAT)
    rows = []
    for r, run in trained_runs(summary) if obj.any() else []:
        model, cfg, _ = load_model(run)
        p0, p1 = (infer(model, im, cfg.eval, ds.num_classes, cfg.model.align_corners).argmax(1) for im in (x, swap_horizon(x)))
        swapped = ((p0 == CAR) & (p1 == BOAT)) | ((p0 == BOAT) & (p1 == CAR))
        rows.append([r['preset'], r['seed'], f'{100 * (p0 == y)[obj].float().mean():.0f} %', f'{100 * swapped[obj].float().mean():.0f} %'])
    return Table(['preset', 'seed', 'car/boat pixels right', 'swapped by the horizon swap'], rows, table_notes(summary),
                 title='does the model read the horizon?')
probe = horizon_probe(); probe

# %% [markdown]
# The same numbers as a table:

# %%
class_iou_table(summary)

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
# ## Context against no context, seed by seed
#
# Every preset shares each seed's data order and the initial weights of the trunk and the auxiliary head
# (`ctxseg.models.segmentor.build_model` builds each part from its own seed), so the four baselines form
# paired samples. The table judges the one claim these baselines make, that context heads beat a plain FCN,
# with the protocol of {doc}`/nbs/11_runner`: the mean paired difference over seeds with its 95 % t interval,
# *held* when the interval is above zero, *refuted* when below, else *not resolved* with the smallest effect
# this number of seeds could detect.

# %%
fcn = 'synthetic_fcn' if 'synthetic_fcn' in ch.presets else ch.presets[0]
claims = [dict(claim=f'{p.split("_")[-1].upper()} > FCN{"" if c is None else " on " + c}', rows=p.split('_')[-1], baseline=fcn,
               method=p, expect='increase', cls=c)
          for p in ch.presets if p != fcn for c in (None, 'car', 'boat')]
claims_table(summary, claims) if claims else print('one preset only: nothing to compare')

# %%
#| label: fig-train-baselines-paired
#| fig-cap: mIoU of each context head against FCN, seed by seed: a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black. Each head beats FCN on four seeds; on the fifth, where FCN reached about 60 %, it does not.
plot_pairs(summary, claims, strip=(), width=3.2); plt.show()

# %% [markdown]
# ## The benchmark's targets
#
# The cpu recipe was fixed on these four baselines, before any method of the five papers ran on it, to meet
# the targets below (`ctxseg.runner.recipe_targets`; in the smoke profile the table is only shown, its numbers
# mean nothing). A target that is not met is reported as such, not hidden.

# %%
recipe_targets(summary, baseline=fcn)
