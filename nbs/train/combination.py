# %% [markdown]
# # Combination: MCIBI++ with pixel contrast, a pair no paper ran
# > The best head method of the cpu grids (MCIBI++) trained with the best loss method (in-batch pixel contrast), paired against each of them and against DeepLabV3, over five seeds; for the smoke and cpu profiles.
#
# - skip_exec: true

# %% [markdown]
# The chapters' cpu grids found two methods that held against DeepLabV3 by the widest margins: MCIBI++, a head
# method {cite:p}`jin2022mcibipp`, and in-batch pixel contrast, a loss method {cite:p}`wang2021pixelcontrast`. They
# act in different places (a dataset-level class memory read out into every pixel; a contrastive loss on the
# backbone's last stage, dropped at inference), so nothing in either paper says whether their gains add up. This
# notebook trains the two together (`synthetic_mcibipp_pixcon_batch`: MCIBI++'s head with the pixel-contrast loss
# of its chapter, both with their cpu parameters unchanged) and judges the combination against each.
#
# ```
# ctxseg run-notebooks --profile cpu combination           # -> book/results/cpu/combination.ipynb
# ```
#
# ```{admonition} Reproduce this page
# `ctxseg run-notebooks --profile cpu combination` on a CPU: 5 runs of 1,000 iterations at 192 px, about 6 to 7
# minutes each on a 2-core AMD EPYC, so about 35 minutes. The DeepLabV3, MCIBI++ and pixel-contrast rows are the
# committed runs of their chapters and are not retrained. Finished runs are reused, so an interrupted execution
# resumes where it stopped.
# ```

# %% tags=["parameters"]
import os
profile = os.environ.get('CTXSEG_PROFILE', 'smoke')   # smoke | cpu; papermill's value wins
presets = None        # list of preset names, or None
seeds = None          # list of ints, or None
overrides = []        # list of override strings
out_dir = None        # folder for the run folders, or None
time_budget = 0.0     # seconds; 0: no limit
command = ''          # how this execution was started

# %%
PROFILE_DEFAULTS = {
    'smoke': dict(presets=['smoke_mcibipp_pixcon', 'smoke_mcibipp'], seeds=[0, 1],
                  overrides=['train.iters=24', 'train.lr=0.02', 'train.log_interval=1', 'train.ckpt_interval=12']),
    'cpu': dict(presets=['synthetic_mcibipp_pixcon_batch'], seeds=[0, 1, 2, 3, 4], overrides=[]),
}

# %%
import matplotlib.pyplot as plt
from ctxseg import configs as C
from ctxseg.runner import (load_summary, merge_summaries, repo_root, git_info, machine_info, train_grid, grid_table,
                           class_iou_table, plot_losses, plot_class_iou, plot_overlays, claims_table, expand_claims, plot_paired)
from ctxseg.presets.pixel_contrast import COMBINATION_CLAIMS

if profile not in PROFILE_DEFAULTS:
    raise ValueError(f"unknown profile {profile!r}: one of {', '.join(PROFILE_DEFAULTS)}")
d = PROFILE_DEFAULTS[profile]
presets = list(presets or d['presets'])
seeds = [int(s) for s in (seeds if seeds is not None else d['seeds'])]
overrides = [*d['overrides'], *overrides]
out_dir = repo_root() / (out_dir or f'runs/{profile}/combination')
shown_dir = out_dir.relative_to(repo_root()) if out_dir.is_relative_to(repo_root()) else out_dir
print(f'profile {profile}: {len(presets)} presets × {len(seeds)} seeds -> {shown_dir}')

# %% [markdown]
# ## The reference rows
#
# DeepLabV3, MCIBI++ and in-batch pixel contrast are the committed runs of their chapters (same recipe, same seeds).

# %%
refs = []
if profile == 'cpu' and not overrides:
    for grid, p in (('baselines', 'synthetic_aspp'), ('mcibi', 'synthetic_mcibipp'), ('pixel_contrast', 'synthetic_aspp_pixcon_batch')):
        s = load_summary(repo_root() / 'book' / 'results' / 'cpu' / grid)
        refs.append({**s, 'runs': [r for r in s['runs'] if r['preset'] == p]})
        print(f"{p}: {len(refs[-1]['runs'])} runs of the {grid} grid at {s['git_commit'][:12]}")

# %% [markdown]
# ## Training

# %%
context = {'notebook': 'combination', 'profile': profile, 'command': command, 'hardware': machine_info()['hardware'], **git_info()}
summary = train_grid(presets, seeds, overrides, out_dir, time_budget=time_budget, context=context)
summary = load_summary(out_dir)                     # the same summary, with each run's commit from its provenance
print(f"status: {summary['status']}, {summary['wall_time_s']:.0f} s; summary: {shown_dir}/summary.json")

# %% [markdown]
# ## Results

# %%
merged = merge_summaries(*refs, summary)
merged['presets'] = [*(r['runs'][0]['preset'] for r in refs if r['runs']), *summary['presets']]
display(grid_table(merged, metrics=('mIoU', 'aAcc', 'mAcc', 'BF@1')))   # with the reference rows of the chapters
grid_table(summary)                                                   # this grid's own runs

# %%
#| label: fig-train-combination-losses
#| fig-cap: Training loss (all terms: MCIBI++'s stages and the weighted pixel-contrast term included; running mean over 3 logs) of MCIBI++ with in-batch pixel contrast, one line per seed. The contrastive term joins after its 125-iteration warm-up, so a step there is expected, as in the pixel-contrast chapter.
plot_losses(summary, smooth=3 if profile != 'smoke' else 1)
plt.show()

# %%
#| label: fig-train-combination-class-iou
#| fig-cap: Per-class validation IoU of MCIBI++ with in-batch pixel contrast, mean over five seeds with one-standard-deviation whiskers; the table below sets it beside DeepLabV3, MCIBI++ and pixel contrast class by class.
plot_class_iou(summary)
plt.show()

# %%
class_iou_table(summary)

# %% [markdown]
# ## The claims, seed by seed

# %%
claims = expand_claims(merged, COMBINATION_CLAIMS) or expand_claims(merged, [('with pixel contrast against without', presets[-1], presets[0], [None])])
claims_table(merged, claims) if claims else print('none of the claims has both of its rows in this grid')

# %%
#| label: fig-train-combination-paired
#| fig-cap: mIoU seed by seed for each pair the claims compare, the combination against MCIBI++, against in-batch pixel contrast and against DeepLabV3 (the committed runs of their chapters): a line per seed (green where the second row is higher, red where lower) and the mean of the paired seeds in black.
pairs = list(dict.fromkeys((c['baseline'], c['method']) for c in claims))
if pairs:
    fig, axs = plt.subplots(1, len(pairs), figsize=(3.0 * len(pairs), 3.0), squeeze=False, sharey=True)
    for ax, (b, m) in zip(axs[0], pairs):
        plot_paired(merged, b, m, ax=ax)
        ax.set_xticklabels([b.replace('synthetic_', ''), m.replace('synthetic_', '')], fontsize=7, rotation=12)
    fig.tight_layout(); plt.show()

# %% [markdown]
# ## Qualitative results

# %%
#| label: fig-train-combination-overlays
#| fig-cap: Four validation images (rows): the image, its ground truth, then the seed-0 prediction of MCIBI++ with in-batch pixel contrast, wrong pixels outlined in black and pixel accuracy in the corner.
plot_overlays(summary, n=4, seed=0 if 0 in seeds else None)
plt.show()
