# %% [markdown]
# # MCIBI: training
# > DeepLabV3 against the same network with the MCIBI and MCIBI++ heads, over several seeds: results, the claims judged, the memory during training, the read-out on an image; for the smoke, cpu and gpu profiles.
#
# - skip_exec: true

# %% [markdown]
# This notebook trains the heads of {doc}`/nbs/51_mcibi_module` {cite:p}`jin2021mcibi,jin2022mcibipp`. It is a
# *training notebook*. This page is the notebook executed in its cpu profile; its clean source is
# `nbs/train/mcibi.ipynb`, which papermill runs for any profile.
#
# | profile | presets | data | where it runs |
# |---|---|---|---|
# | `smoke` | `smoke_mcibi`, `smoke_mcibipp`, a few dozen iterations | synthetic, 32 px | CI, seconds |
# | `cpu` | `*_mcibi` (the read-out without the consistency loss) and `*_mcibipp`, on both benchmarks; DeepLabV3 and its class-balanced control are the runs of the baselines page, reused | synthetic v3 (192 px, 1,200 iterations) and aerial v1 (128 px, 2,200 iterations), 5 seeds | a 2-core machine, 4 to 8 minutes a run |
# | `gpu` | `cityscapes_mcibi_r101`, `ade20k_mcibi_r101` (and the other README rows by name) | the authors' recipes | a CUDA machine with the datasets under `data/` |
#
# The gpu presets build the authors' networks to the tensor and follow their recipes field by field ({doc}`/nbs/15_convert`,
# {doc}`/nbs/16_recipes`; the table of this chapter's presets is in {doc}`/nbs/52_mcibi_presets`). Before a GPU run, `ctxseg rehearse ade20k_mcibi_r101` takes two full-size steps
# on a CPU ({doc}`/nbs/17_rehearse`, where the *GPU readiness* table gives each preset's FLOPs and memory). A released checkpoint of the authors evaluates through ctxseg in minutes: `ctxseg eval ade20k_mcibi_r101 --weights authors:mcibi=<file> --set data.root=data/<dataset>`.
#
# To run it:
#
# ```
# ctxseg run-notebooks --profile cpu mcibi                       # -> book/results/cpu/mcibi.ipynb
# ctxseg run-notebooks --profile gpu mcibi --time-budget 14400   # 4-hour chunks: run it again to resume
# ```
#
# ```{admonition} Reproduce this page
# `ctxseg run-notebooks --profile cpu mcibi` on a CPU: 20 MCIBI runs; the runs of DeepLabV3 and its control are copied
# from `runs/cpu/baselines` when the baselines page has trained them (otherwise they are trained here as well). The
# wall time of each run is in the section *What a run costs* at the end. Finished runs are reused, so an interrupted
# execution resumes where it stopped (`--time-budget` pauses it on purpose). Version 2 of this page, with the
# hard-aggregation and consistency-loss rows whose verdicts stand, is kept as `book/results/cpu/v2/mcibi.ipynb`.
# ```

# %% [markdown]
# The parameters (papermill replaces them; `None` means the profile's default): `profile`, `presets`, `seeds`,
# `overrides` (applied to every preset), `out_dir` (default `runs/<profile>/mcibi`), `time_budget` (seconds; 0:
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
from ctxseg.presets.mcibi import V3_ROWS
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke_mcibi', 'smoke_mcibipp'], seeds=[0, 1], overrides=SMOKE_OVERRIDES, reference=None),
    'cpu': dict(presets=on_both(['synthetic_aspp', 'synthetic_aspp_balanced', *V3_ROWS]), seeds=[0, 1, 2, 3, 4], overrides=[], reference=None),
    'gpu': dict(presets=['cityscapes_mcibi_r101', 'ade20k_mcibi_r101'], seeds=[0], overrides=[], reference='runs/gpu/baselines'),
}

# %%
import numpy as np
import matplotlib.pyplot as plt
import torch
from IPython.display import display, Markdown
from ctxseg.chapter import (stack_figures, benchmark_claims, benchmark_pairs,
                            setup, train_chapter, adopt_runs, by_dataset, plot_pairs, plot_log_panels, trained_runs, load_model,
                            save_results)
from ctxseg.grids import grid_table, class_iou_table, plot_losses, plot_class_iou, plot_overlays, one_piece_walls, Table, table_notes
from ctxseg.protocol import claims_table, expand_claims, judge_claims, replication_table, cue_table, bottom_line, claims_on
from ctxseg.provenance import repo_root
from ctxseg.presets.mcibi import CPU_CLAIMS

ch = setup('mcibi', PROFILE_DEFAULTS, profile, presets, seeds, overrides, out_dir, time_budget, command)
ch.check_gpu()

# %% [markdown]
# ## The baseline rows
#
# DeepLabV3 and its class-balanced control are the runs of {doc}`/book/results/cpu/baselines`: a run folder is copied
# here when its recorded config and data are exactly those this grid would train; otherwise the row is trained here.

# %%
reused = adopt_runs(ch, repo_root() / 'runs' / profile / 'baselines', [p for p, c in ch.cfgs.items() if c.model.head != 'mcibi'])

# %% [markdown]
# ## Training

# %%
summary = train_chapter(ch)

# %% [markdown]
# ## Results
#
# Mean ± sample standard deviation over seeds on the validation split, in percent; then the training loss of every
# run (all terms: the main output, the auxiliary head, the first decoder stage, and where it is on the consistency
# loss) and the per-class IoU.

# %%
grid_table(summary)

# %%
bench = by_dataset(ch, summary)

# %%
#| label: fig-train-mcibi-losses
#| fig-cap: Training loss (all terms; running mean over 3 logs) of every row, one line per seed and a panel per row, first on the synthetic benchmark, then on the aerial one.
stack_figures([plot_losses(s, smooth=ch.smooth) for s in bench.values()]); plt.show()

# %%
#| label: fig-train-mcibi-class-iou
#| fig-cap: Per-class validation IoU of every row, mean over five seeds with one-standard-deviation whiskers, one panel per benchmark.
figs = []
for d, s in bench.items(): fig = plot_class_iou(s); fig.axes[0].set_title(d, fontsize=10); figs.append(fig)
stack_figures(figs); plt.show()

# %%
for d, s in bench.items(): display(class_iou_table(s))

# %% [markdown]
# ## The claims, on both benchmarks
#
# `CPU_CLAIMS` of {doc}`/nbs/52_mcibi_presets` for the rows this grid trains, judged with the protocol of
# {doc}`/nbs/11c_protocol`: on each benchmark the mean paired difference over the seeds with its 95 % t interval, on
# the mIoU and on the mIoU without the rarest class; against DeepLabV3 and against its class-balanced control; a claim
# holds only if it holds on both benchmarks. Then the rates of runs that use the scene cue, and the class targets on
# each benchmark. A grid without those presets (the smoke profile) judges MCIBI++ against MCIBI.

# %%
CLAIMS = [c for c in CPU_CLAIMS if c[1] in ch.presets and c[2] in ch.presets]
judged = judge_claims(summary, CLAIMS) if CLAIMS else []
replication_table(judged) if judged else print('not in this profile: the claims need the cpu grid')

# %%
Markdown(bottom_line(judged)) if judged else print('not in this profile')

# %%
cue_table(judged) if judged else print('not in this profile')

# %%
fallback = [('MCIBI++ against MCIBI', ch.presets[0], ch.presets[-1], [None])]
for t in benchmark_claims(bench, CLAIMS, fallback): display(t)

# %%
#| label: fig-train-mcibi-paired
#| fig-cap: mIoU seed by seed for each pair the claims compare, one row of panels per benchmark: a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black.
benchmark_pairs(bench, CLAIMS, fallback, strip=('{d}_',), width=2.8); plt.show()

# %% [markdown]
# ## The memory during training
#
# Every run logs its memory's state at each logged step: for MCIBI the momentum of the update (it follows the
# learning rate), the mean norm of the rows and the mean cosine between the rows of different classes (near 1:
# the rows say the same for every class); for MCIBI++ the mean of $\mu_c$ and $\sigma_c$. Mean over seeds:

# %%
#| label: fig-train-mcibi-memory
#| fig-cap: The memory during training, mean over seeds: for the MCIBI rows the update momentum (it follows the learning rate), the mean cosine between the rows of different classes and the mean row norm; for MCIBI++ the mean μ and σ. The class rows drift apart, their cosine falling from about 0.9 at the first logged step to about 0.7 on both benchmarks; MCIBI++'s μ and σ end equal in size.
plot_log_panels(summary, [('head.memory_momentum', 'momentum'), ('head.memory_cos', 'cosine between class rows'),
                          ('head.memory_norm', 'row norm'), ('head.memory_mu', 'MCIBI++: mean μ'), ('head.memory_sigma', 'MCIBI++: mean σ')])
plt.show()

# %% [markdown]
# ## The memory and the read-out, seed by seed
#
# From the checkpoints of the memory rows on both benchmarks (not committed; the numbers are saved beside the
# executed notebook as `mcibi_memory.json`): the cosine between the final memory rows of every pair of classes; and
# for one validation image per benchmark (the one of the first 16 with the most classes) the read-out weights of Eq. {eq}`mcibi-read`: at every position of the 1/8
# grid, the row it weights most and that weight (1: the pixel reads one row; 1/K: all rows alike).

# %%
#| label: fig-train-mcibi-readout
#| fig-cap: For the seed-0 model of each row: the cosine between the final memory rows of every pair of classes; then on one validation image its ground truth, the row each position of the 1/8 grid weights most, and that weight. MCIBI++'s rows are the least alike; the weight drops where the first stage hesitates: inside the bush and rock, along thin structures, in the fields.
from ctxseg.methods.mcibi import sample_distribution_memory
from ctxseg.grids import _palette

def readout(model, image):
    "The first stage's class probabilities at 1/8 (the read-out weights of Eq. mcibi-read): K×h×w."
    with torch.no_grad(): return model.head(model.backbone(image[None]))['stage1_logits'].softmax(1)[0]

memories, shown = {}, {}                                              # shown: {benchmark: (image index, its dataset)}
for d, sub in bench.items():
    for r, run in trained_runs(sub):
        if ch.cfgs[r['preset']].model.head != 'mcibi': continue        # the memory heads only
        model, cfg, ds = load_model(run)
        if d not in shown: shown[d] = (max(range(min(16, len(ds))), key=lambda i: len(ds[i]['label'].unique())), ds)   # the image with most classes
        img = shown[d][0]
        h = model.head
        M = h.memory if hasattr(h, 'memory') else sample_distribution_memory(h.stats, h.noise.shape[1], h.noise)
        u = torch.nn.functional.normalize(M.float(), dim=1)
        w = readout(model, ds[img]['image'])
        mean_max = float(np.mean([readout(model, ds[i]['image']).max(0).values.mean() for i in range(min(16, len(ds)))]))
        memories[r['dir']] = {'preset': r['preset'], 'seed': r['seed'], 'dataset': d, 'cosine': (u @ u.T).tolist(),
                              'classes': list(ds.classes), 'image_index': img, 'readout_max': w.max(0).values.round(decimals=3).tolist(),
                              'readout_argmax': w.argmax(0).tolist(), 'mean_max_weight_16_images': mean_max}

if memories:
    first = {}
    for k, m in memories.items(): first.setdefault(m['preset'], m)
    fig, axs = plt.subplots(len(first), 4, figsize=(12, 3.1 * len(first)), squeeze=False)
    for row, (p, m) in zip(axs, first.items()):
        img, ds = shown[m['dataset']]
        s, pal = ds[img], _palette(ds)
        im = row[0].imshow(np.array(m['cosine']), vmin=-1, vmax=1, cmap='RdBu_r')
        row[0].set_xticks(range(len(m['classes']))); row[0].set_xticklabels(m['classes'], rotation=90, fontsize=9)
        row[0].set_yticks(range(len(m['classes']))); row[0].set_yticklabels(m['classes'], fontsize=9)
        row[0].set_title(f"{p}, seed {m['seed']}: cos(M_i, M_j)", fontsize=10)
        fig.colorbar(im, ax=row[0], shrink=0.8)
        row[1].imshow(pal[s['label'].numpy().clip(0, 255)]); row[1].set_title(f'validation image {img}: ground truth', fontsize=10)
        row[2].imshow(pal[np.array(m['readout_argmax'])]); row[2].set_title('read-out: the most weighted row', fontsize=10)
        im = row[3].imshow(np.array(m['readout_max']), vmin=0, vmax=1, cmap='viridis')
        row[3].set_title('read-out: its weight', fontsize=10); fig.colorbar(im, ax=row[3], shrink=0.8)
        for ax in row[1:]: ax.set_axis_off()
    fig.tight_layout(); plt.show()

# %%
if memories: save_results(ch, 'memory', {'runs': memories})

# %% [markdown]
# ## Qualitative results
#
# Validation images under each preset (the seed-0 runs whose checkpoints are on disk): image, ground truth, then
# each prediction with its wrong pixels outlined.

# %%
#| label: fig-train-mcibi-overlays
#| fig-cap: Three validation images of each benchmark (rows): the image, its ground truth, then the seed-0 prediction of each row, wrong pixels outlined in black and pixel accuracy in the corner.
stack_figures([plot_overlays(s, n=3, seed=ch.overlay_seed) for s in bench.values()]); plt.show()

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
