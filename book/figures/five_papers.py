"""Draw book/figures/five_papers.svg: where each of the five papers plugs into one segmentation network.

Run from the repository root when the picture should change (the SVG is committed):
    .venv/bin/python book/figures/five_papers.py
"""
from pathlib import Path

import matplotlib
matplotlib.use('Agg')      # a script, not a notebook: no display needed
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

HEAD, LOSS, BASE = '#1f6fb2', '#c2571a', '#555555'   # changes the forward pass | training-only loss | baseline
plt.rcParams.update({'font.family': 'DejaVu Sans', 'font.size': 12.5, 'svg.fonttype': 'path',
                     'svg.hashsalt': 'ctxseg'})      # deterministic ids in the SVG


def box(ax, x, y, w, h, text, colour, dashed=False, fill='white', bold=False, size=12.5):
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle='round,pad=0.02,rounding_size=0.08',
                                linewidth=1.6, edgecolor=colour, facecolor=fill,
                                linestyle=(0, (4, 2.5)) if dashed else 'solid'))
    ax.text(x, y, text, ha='center', va='center', color='#222222' if not bold else colour,
            fontsize=size, fontweight='bold' if bold else 'normal', linespacing=1.35)


def arrow(ax, xy0, xy1, colour, dashed=False, rad=0.0):
    ax.annotate('', xy=xy1, xytext=xy0, arrowprops=dict(
        arrowstyle='-|>', color=colour, lw=1.5, shrinkA=2, shrinkB=2, mutation_scale=12,
        linestyle=(0, (4, 2.5)) if dashed else 'solid', connectionstyle=f'arc3,rad={rad}'))


def draw(path: Path):
    fig, ax = plt.subplots(figsize=(11, 6.2))
    ax.set_xlim(0, 11); ax.set_ylim(0, 6.2); ax.axis('off')

    # the shared baseline: image -> backbone -> head -> classifier -> prediction
    y = 3.35
    xs = [0.6, 2.55, 5.05, 7.3, 9.15]
    labels = ['image\n3×H×W', 'backbone\nResNet-D8 · HRNetV2', 'context head\nFCN · PSP · ASPP · OCR',
              'classifier\n1×1 conv', 'prediction\nC×H×W']
    widths = [1.1, 2.35, 2.55, 1.45, 1.45]
    for x, w, t in zip(xs, widths, labels): box(ax, x, y, w, 0.85, t, BASE, fill='#f3f3f3', size=11)
    for (x0, w0), (x1, w1) in zip(zip(xs, widths), zip(xs[1:], widths[1:])):
        arrow(ax, (x0 + w0 / 2, y), (x1 - w1 / 2, y), BASE)
    ax.text(10.5, y, 'CE\nloss', ha='center', va='center', color=BASE, fontsize=11)
    arrow(ax, (9.88, y), (10.2, y), BASE)

    # head methods: change the forward pass and stay at inference
    box(ax, 3.55, 5.35, 3.2, 1.0, 'MCIBI / MCIBI++\ndataset-level class memory,\nread out into each pixel', HEAD)
    box(ax, 7.05, 5.35, 3.2, 1.0, 'GALD\nglobal aggregation, then\nlocal distribution', HEAD)
    arrow(ax, (4.1, 4.85), (4.65, 3.79), HEAD)
    arrow(ax, (6.5, 4.85), (5.45, 3.79), HEAD)

    # loss methods: extra training losses on features, dropped at inference
    yl = 0.8
    box(ax, 1.65, yl, 3.1, 1.0, 'Contextrast\nmulti-layer anchors +\nboundary-aware negatives', LOSS, dashed=True)
    box(ax, 5.05, yl, 3.1, 1.0, 'Pixel contrast\npixel ↔ pixel across images\n(optional memory queue)', LOSS,
        dashed=True)
    box(ax, 8.45, yl, 3.1, 1.0, 'RegionContrast\nregion centres ↔\nmemory bank', LOSS, dashed=True)
    arrow(ax, (2.3, 2.91), (2.0, 1.32), LOSS, dashed=True)        # backbone levels
    arrow(ax, (4.85, 2.91), (4.95, 1.32), LOSS, dashed=True)      # head embeddings
    arrow(ax, (5.75, 2.91), (7.9, 1.32), LOSS, dashed=True)       # head features
    # prediction -> Contextrast's error maps (BANE), drawn as an elbow under the baseline
    dash = (0, (4, 2.5))
    ax.plot([9.15, 9.15, 0.85], [2.91, 2.1, 2.1], color=LOSS, lw=1.5, linestyle=dash)
    arrow(ax, (0.85, 2.1), (0.85, 1.32), LOSS)
    ax.text(9.25, 2.45, 'error maps', color=LOSS, fontsize=11, va='center')
    ax.text(2.45, 2.45, 'features at every level', color=LOSS, fontsize=11, va='center')

    # legend
    ax.plot([8.95, 9.45], [5.72, 5.72], color=HEAD, lw=1.8)
    ax.text(9.55, 5.72, 'changes the forward pass\n(kept at inference)', va='center', fontsize=11)
    ax.plot([8.95, 9.45], [5.0, 5.0], color=LOSS, lw=1.8, linestyle=(0, (4, 2.5)))
    ax.text(9.55, 5.0, 'extra training loss\n(free at inference)', va='center', fontsize=11)
    fig.savefig(path, bbox_inches='tight', metadata={'Date': None, 'Creator': None})
    plt.close(fig)


if __name__ == '__main__':
    out = Path(__file__).with_suffix('.svg')
    draw(out)
    print(f'wrote {out} ({out.stat().st_size / 1024:.0f} KiB)')
