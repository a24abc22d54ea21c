# %% [markdown]
# # Contextrast: training
# > DeepLabV3 against the same network with the three rows of the paper's Table 6 (CCL alone, with semi-hard negatives, with BANE) and against ContrastiveSeg's loss, over paired seeds; the claims judged; the per-layer loss over training; the feature metrics of Table 5; the error maps, distances and negatives of a trained model; for the smoke, cpu and gpu profiles.
#
# - skip_exec: true

# %% [markdown]
# This notebook trains the loss of {doc}`/nbs/71_contextrast_module` {cite:p}`sung2024contextrast`. It is a *training
# notebook*. This page is the notebook executed in its cpu profile; its clean source is
# `nbs/train/contextrast.ipynb`, which papermill runs for any profile.
#
# | profile | presets | data | where it runs |
# |---|---|---|---|
# | `smoke` | `smoke_contextrast` (BANE), `smoke_contextrast_random` (CCL alone), a few dozen iterations | synthetic, 32 px | CI, seconds |
# | `cpu` | `*_aspp_contextrast` (CCL + BANE), `*_aspp_ccl` (CCL alone), `*_aspp_ccl_semihard` (the paper's semi-hard row), on both benchmarks; DeepLabV3, its class-balanced control and in-batch pixel contrast are the runs of their pages, reused | synthetic v3 (192 px, 1,200 iterations) and aerial v1 (128 px, 2,200 iterations), 5 seeds | a 2-core machine, 4 to 8 minutes a run |
# | `gpu` | `contextrast_cityscapes_fcn_hr48` and its baseline `contextrast_cityscapes_fcn_hr48_baseline` (HRNetV2-W48, the paper's main row); the DeepLabV3, OCRNet, CamVid, ADE20K, COCO-Stuff and PASCAL-Context presets by name | the paper's datasets | a CUDA machine with the datasets under `data/` |
#
# The gpu presets build the authors' networks to the tensor and follow their recipes field by field ({doc}`/nbs/15_convert`,
# {doc}`/nbs/16_recipes`; the table of this chapter's presets is in {doc}`/nbs/72_contextrast_presets`). Before a GPU run, `ctxseg rehearse contextrast_cityscapes_fcn_hr48` takes two full-size steps
# on a CPU ({doc}`/nbs/17_rehearse`, where the *GPU readiness* table gives each preset's FLOPs and memory).
#
# To run it:
#
# ```
# ctxseg run-notebooks --profile cpu contextrast           # -> book/results/cpu/contextrast.ipynb
# ctxseg run-notebooks --profile gpu contextrast --time-budget 14400
# ```
#
# ```{admonition} Reproduce this page
# `ctxseg run-notebooks --profile cpu contextrast` on a CPU: 30 Contextrast runs; the runs of DeepLabV3, its control
# and in-batch pixel contrast are copied from `runs/cpu/baselines` and `runs/cpu/pixel_contrast` when their pages have
# trained them (otherwise they are trained here as well). The wall time of each run is in the section *What a run
# costs* at the end. Finished runs are reused, so an interrupted execution resumes where it stopped (`--time-budget`
# pauses it on purpose). Version 2 of this page, with the warm-up experiment that settled the collapse of CCL, is kept
# as `book/results/cpu/v2/contextrast.ipynb`.
# ```
#
# The one-seed sweeps (the BANE ratio, the fusion weight, the temperature, the number of positives, the order of the
# layer weights) are presets of the module, `synthetic_aspp_contextrast_<sweep>`; pass them as `presets` with
# `seeds=[0]`.

# %% [markdown]
# The parameters (papermill replaces them; `None` means the profile's default): `profile`, `presets`, `seeds`,
# `overrides` (applied to every preset), `out_dir` (default `runs/<profile>/contextrast`), `time_budget` (seconds; 0:
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
from ctxseg.presets.contextrast import V3_ROWS
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke_contextrast', 'smoke_contextrast_random'], seeds=[0, 1], overrides=SMOKE_OVERRIDES, reference=None),
    'cpu': dict(presets=on_both(['synthetic_aspp', 'synthetic_aspp_balanced', 'synthetic_aspp_pixcon_batch', *V3_ROWS]),
                seeds=[0, 1, 2, 3, 4], overrides=[], reference=None),
    'gpu': dict(presets=['contextrast_cityscapes_fcn_hr48', 'contextrast_cityscapes_fcn_hr48_baseline'], seeds=[0], overrides=[], reference=None),
}

# %%
from IPython.display import display
import numpy as np
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from IPython.display import Markdown
from ctxseg.chapter import (stack_figures, benchmark_claims, benchmark_pairs,
                            setup, train_chapter, adopt_runs, by_dataset, plot_pairs, plot_log_panels,
                            trained_runs, load_model, pixel_sample, save_results, shown, stats_table)
from ctxseg.grids import grid_table, class_iou_table, plot_losses, plot_class_iou, plot_overlays, one_piece_walls, Table, table_notes
from ctxseg.models.segmentor import method_params
from ctxseg.protocol import claims_table, expand_claims, judge_claims, replication_table, cue_table, bottom_line, claims_on
from ctxseg.provenance import repo_root
from ctxseg.presets.contextrast import CPU_CLAIMS

ch = setup('contextrast', PROFILE_DEFAULTS, profile, presets, seeds, overrides, out_dir, time_budget, command,
           detail=lambda c: f'; method {c.method.name or "none"} {method_params(c.method).get("sampling", "")}')
ch.check_gpu()

# %% [markdown]
# ## The rows of other pages
#
# DeepLabV3 and its class-balanced control are the runs of {doc}`/book/results/cpu/baselines`, and in-batch pixel
# contrast (ContrastiveSeg's loss on the same trunk, for the paper's Table 2 comparison) the runs of
# {doc}`/book/results/cpu/pixel_contrast`: a run folder is copied here when its recorded config and data are exactly
# those this grid would train; otherwise the row is trained here like any other.

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
# Mean ± sample standard deviation over seeds on the validation split, in percent (BF@1: the boundary F-score at
# 1 px; bIoU: the boundary IoU at 2 % of the image diagonal, our stand-in for the paper's boundary mIoU of Table 4);
# then the training loss of every run and the per-class IoU.

# %%
grid_table(summary, metrics=('mIoU', 'mIoU_no_rarest', 'aAcc', 'mAcc', 'BF@1', 'bIoU@0.02'))

# %%
bench = by_dataset(ch, summary)

# %%
#| label: fig-train-contextrast-losses
#| fig-cap: Training loss (all terms, the contrastive loss included; running mean over 3 logs) of every row, one line per seed and a panel per row, first on the synthetic benchmark, then on the aerial one.
stack_figures([plot_losses(s, smooth=ch.smooth) for s in bench.values()]); plt.show()

# %%
#| label: fig-train-contextrast-class-iou
#| fig-cap: Per-class validation IoU of every row, mean over five seeds with one-standard-deviation whiskers, one panel per benchmark.
figs = []
for d, s in bench.items(): fig = plot_class_iou(s); fig.axes[0].set_title(d, fontsize=10); figs.append(fig)
stack_figures(figs); plt.show()

# %%
for d, s in bench.items(): display(class_iou_table(s))

# %% [markdown]
# ## The claims, on both benchmarks
#
# `CPU_CLAIMS` of {doc}`/nbs/72_contextrast_presets`, judged with the protocol of {doc}`/nbs/11c_protocol`: on each
# benchmark the mean paired difference over the seeds with its 95 % t interval, on the mIoU and on the mIoU without
# the rarest class; against the baseline and, for the claims against DeepLabV3, against its class-balanced control;
# a claim holds only if it holds on both benchmarks. The second table compares the rates of runs that use the scene
# cue, with McNemar's exact test; the third gives the class and boundary targets on each benchmark. A grid without
# those presets (the smoke profile) judges CCL alone against CCL + BANE.

# %%
CLAIMS = [c for c in CPU_CLAIMS if c[1] in ch.presets and c[2] in ch.presets]
judged = judge_claims(summary, CLAIMS) if CLAIMS else []
replication_table(judged) if judged else print('not in this profile: the claims need the cpu grid')

# %%
Markdown(bottom_line(judged)) if judged else print('not in this profile')

# %%
cue_table(judged) if judged else print('not in this profile')

# %%
fallback = [('BANE against CCL alone', ch.presets[-1], ch.presets[0], [None])]   # the smoke profile
for t in benchmark_claims(bench, CLAIMS, fallback): display(t)

# %%
#| label: fig-train-contextrast-paired
#| fig-cap: mIoU seed by seed for each pair the claims compare, one row of panels per benchmark: a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black.
benchmark_pairs(bench, CLAIMS, fallback, strip=('{d}_aspp_', '{d}_'), width=2.6); plt.show()

# %% [markdown]
# ## The loss during training, layer by layer
#
# Every run logs the unweighted pixel-anchor loss of each layer (layer 1 is the shallowest), the mean number of
# negatives per anchor at the last layer and how many of them are error pixels (BANE or semi-hard). Mean over seeds:

# %%
#| label: fig-train-contextrast-layer-stats
#| fig-cap: What the loss logs during training, mean over seeds: the unweighted pixel-anchor loss of layers 1 (the shallowest) to 4, the negatives per anchor at the last layer and how many are error pixels. CCL alone adds none by construction; BANE and the semi-hard draw add as many as their error maps allow.
keys = [(f'method.layer{i}', f'layer {i} (raw)') for i in range(1, 5)] + [('method.neg', 'negatives per anchor'), ('method.extra', 'of which error pixels')]
plot_log_panels(summary, keys, ncols=3, panel=(3.33, 2.6))
plt.show()

# %% [markdown]
# ## Feature metrics (the paper's Table 5), the error maps and the hardness of the negatives
#
# From the checkpoints of the runs (not committed; the numbers are saved beside the executed notebook):
#
# - for every trained model, up to 200 validation pixels per class of the last encoder layer (`layer4`, the
#   features "just before reaching the segmentation head", as Table 5 measures them), L2-normalised: the intra-class
#   alignment $A$, the inter-class uniformity $U$ and the neighbourhood uniformity $U_3$, $U_5$ of `tsc_metrics`
#   (the definitions of {cite:t}`li2022tsc`, to which the paper refers);
# - for the seed-0 CCL + BANE model, on one validation image: the error map of the most confused class, its
#   distance map and the negatives BANE keeps (the paper's Fig. 3, made by our code);
# - for the same model, over 32 validation images: the cosine between each error pixel's embedding and the anchor of
#   the class it was mistaken for, and the anchor of its own class, against its distance to the edge of its error
#   region, per layer (the paper's Fig. 5).

# %%
from ctxseg.data import build_loader
from ctxseg.methods.common import labels_to_grid
from ctxseg.methods.contextrast import tsc_metrics, error_maps, edt, bane_select, representative_anchors, fuse_anchors

stats = []
for r, run in trained_runs(summary):
    model, cfg, ds = load_model(run)
    s = pixel_sample(model, ds, 'layer4')
    stats.append({'preset': r['preset'], 'seed': r['seed'], 'feature': 'layer4', **tsc_metrics(s['x'], s['y'], ks=(3, 5))})
if stats:
    display(stats_table(stats, 'preset', ['A', 'U', 'U3', 'U5']))

# %%
bane_run = next((run for r, run in trained_runs(summary, seed=min(ch.seeds))
                 if method_params(ch.cfgs[r['preset']].method).get('sampling') == 'bane'), None)
fig3, fig5 = None, None
if bane_run is not None:
    model, cfg, ds = load_model(bane_run)
    m = model.method
    K = ds.num_classes
    # Fig. 3: one image, the most confused class at layer 1's grid
    b = next(iter(build_loader(ds, 8, train=False)))
    with torch.no_grad(): out = model(b['image'])
    grid = out.features[m.p.features[0]].shape[-2:]
    lab = labels_to_grid(b['label'], grid)
    pred = F.interpolate(out.logits, size=tuple(grid), mode='bilinear', align_corners=False).argmax(1)
    E = error_maps(pred, lab, K, ds.ignore_index)
    i, n = divmod(int(E.flatten(2).sum(-1).flatten().argmax()), K)
    Dm = edt(E[i:i + 1, n:n + 1])
    sel = bane_select(Dm, m.p.ratio)
    fig3 = {'image': i, 'class': ds.classes[n], 'grid': list(grid), 'label': lab[i].tolist(), 'pred': pred[i].tolist(),
            'error': E[i, n].int().tolist(), 'distance': Dm[0, 0].numpy().round(3).tolist(), 'selected': sel[0, 0].int().tolist()}
    # Fig. 5: cosine to the anchor of the mistaken class against the distance, per layer
    bins = [1.0, 1.5, 2.0, 3.0, 4.0, 6.0, np.inf]
    acc = {f: np.zeros((len(bins), 2)) for f in m.p.features}
    acc_true = {f: np.zeros((len(bins), 2)) for f in m.p.features}
    seen = 0
    with torch.no_grad():
        for b in build_loader(ds, 8, train=False):
            out = model(b['image'])
            embs = [m.proj[f](out.features[f]) for f in m.p.features]
            labs = [labels_to_grid(b['label'], z.shape[-2:]) for z in embs]
            A, cnt = zip(*[representative_anchors(z, y, K, ds.ignore_index) for z, y in zip(embs, labs)])
            A = [F.normalize(a, dim=1) for a in fuse_anchors(list(A), list(cnt), m.p.w_low)]
            for f, z, y, a in zip(m.p.features, embs, labs, A):
                pr = F.interpolate(out.logits, size=tuple(z.shape[-2:]), mode='bilinear', align_corners=False).argmax(1)
                Em = error_maps(pr, y, K, ds.ignore_index)
                Dd = edt(Em)
                cos = torch.einsum('bdhw,kd->bkhw', z, a)
                true = cos.gather(1, y.clamp(max=K - 1)[:, None]).expand_as(cos)         # the anchor of the pixel's own class
                dv, cv, tv = Dd[Em].numpy(), cos[Em].numpy(), true[Em].numpy()
                idx = np.searchsorted(bins, dv, side='left')
                for j in range(len(bins)):
                    acc[f][j] += [cv[idx == j].sum(), (idx == j).sum()]
                    acc_true[f][j] += [tv[idx == j].sum(), (idx == j).sum()]
            seen += len(b['image'])
            if seen >= 32: break
    labels_ = ['1', '√2', '2', '≤3', '≤4', '≤6', '>6']
    fig5 = {'bins': labels_, 'cosine': {f: [float(s / c) if c else None for s, c in acc[f]] for f in acc},
            'cosine_true': {f: [float(s / c) if c else None for s, c in acc_true[f]] for f in acc_true},
            'count': {f: [int(c) for _, c in acc[f]] for f in acc}}

# %%
#| label: fig-train-contextrast-bane-map
#| fig-cap: BANE on one validation image of the CCL + BANE run of the first seed (the paper's Fig. 3, drawn by our code): the ground truth at layer 1's grid, the error map of the class most often predicted wrongly, each error pixel's distance to the edge of its region, and the share $r$ nearest the edge that BANE keeps as negatives.
#| fig-alt: Four panels: ground truth, error map of the most confused class, distance to the edge of the error region, and the BANE negatives.
if fig3:
    fig, axs = plt.subplots(1, 4, figsize=(11, 3))
    for ax, key, title in zip(axs, ('label', 'error', 'distance', 'selected'),
                              ('ground truth', f"error map: wrongly '{fig3['class']}'", 'distance to the edge', f"BANE negatives, r = {m.p.ratio:.0%}")):
        im = ax.imshow(np.array(fig3[key], dtype=float), cmap='tab10' if key == 'label' else ('magma' if key == 'distance' else 'gray'),
                       interpolation='nearest')
        ax.set_title(title, fontsize=9); ax.axis('off')
        if key == 'distance': fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout(); plt.show()

# %%
#| label: fig-train-contextrast-edge-cosine
#| fig-cap: The error pixels' mean cosine to the anchor of the class they were mistaken for (left) and to the anchor of their own class (right), against their distance to the edge of the error region, one line per layer (the paper's Fig. 5, on 32 validation images of the first seed's BANE run).
if fig5:
    fig, axs = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    for ax, key, title in zip(axs, ('cosine', 'cosine_true'), ('to the anchor of the class it was mistaken for', 'to the anchor of its own class')):
        for f, v in fig5[key].items(): ax.plot(range(len(fig5['bins'])), [np.nan if x is None else x for x in v], marker='o', lw=1, label=f)
        ax.set_xticks(range(len(fig5['bins']))); ax.set_xticklabels(fig5['bins']); ax.set_title(title, fontsize=10)
        ax.set_xlabel('distance to the edge of the error region (grid pixels)', fontsize=9); ax.grid(alpha=.3)
    axs[0].set_ylabel('mean cosine'); axs[0].legend(fontsize=8); fig.tight_layout(); plt.show()

# %%
if stats or fig3:
    save_results(ch, 'features', {'per_class': 200, 'images': 64, 'feature': 'layer4', 'bane_run': bane_run and shown(bane_run),
                                  'stats': stats, 'fig3': fig3, 'fig5': fig5})

# %% [markdown]
# ## Qualitative results
#
# Validation images under each preset (the seed-0 runs whose checkpoints are on disk): image, ground truth, then
# each prediction with its wrong pixels outlined.

# %%
#| label: fig-train-contextrast-overlays
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
