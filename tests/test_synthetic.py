"""The built-in synthetic benchmark (ctxseg.synthetic): determinism, the properties its design promises, the
dataset contract and the Cityscapes-layout export.

The design claims (02_synthetic) are checked statistically on a few hundred samples, with margins wide enough
that they hold for any seed but fail if the generator stops providing what the papers need: the car/boat
scene decided by the signs' majority colour, one appearance distribution for both object classes, thin
wires, class imbalance and ignore pixels.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from ctxseg.data import check_batch
from ctxseg.synthetic import (BOAT, CAR, CLASSES, GROUND, IGNORE_INDEX, SIGN, WIRE, SyntheticSegmentation,
                              class_frequencies, generate, write_cityscapes_layout)

N = 200


@pytest.fixture(scope='module')
def samples():
    return [generate(10_000 + i, 64) for i in range(N)]


def test_generation_is_deterministic_and_seed_dependent():
    a, b, c = generate(7, 48), generate(7, 48), generate(8, 48)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert a[0].shape == (48, 48, 3) and a[0].dtype == np.uint8
    assert a[1].shape == (48, 48) and a[1].dtype == np.uint8


def test_labels_are_valid_and_every_class_and_ignore_occur(samples):
    values = set(np.unique(np.stack([l for _, l in samples])).tolist())
    assert values <= set(range(len(CLASSES))) | {IGNORE_INDEX}
    assert values == set(range(len(CLASSES))) | {IGNORE_INDEX}


def test_one_object_class_per_image_decided_by_the_sign_majority_colour(samples):
    agree = total = 0
    for img, lab in samples:
        has_car, has_boat = (lab == CAR).any(), (lab == BOAT).any()
        assert not (has_car and has_boat), 'cars and boats never share a scene'
        if not (has_car or has_boat) or not (lab == SIGN).any(): continue
        sign = img[lab == SIGN].astype(float)
        warm_px = (sign[:, 0] > sign[:, 2]).mean()            # warm signs are red-dominant, cool ones blue
        agree += (warm_px > 0.5) == has_car; total += 1
    assert total > 0.8 * N and agree / total > 0.9


def test_cars_and_boats_look_alike(samples):
    """The two context classes share one appearance distribution: their mean colours (over many objects)
    differ by far less than either's spread, so no pixel-level colour rule separates them."""
    px = {CAR: [], BOAT: []}
    for img, lab in samples:
        for c in px: px[c].append(img[lab == c].astype(float))
    car, boat = np.concatenate(px[CAR]), np.concatenate(px[BOAT])
    gap = np.abs(car.mean(0) - boat.mean(0))
    assert (gap < 0.25 * np.minimum(car.std(0), boat.std(0))).all(), (gap, car.std(0), boat.std(0))


def test_imbalance_and_thin_structures():
    f = class_frequencies(n=150, size=64, seed=3)
    assert abs(f.sum() - 1) < 1e-9
    assert f[GROUND] > 0.5 and f[GROUND] == f.max()
    assert f[WIRE] < 0.06 and f[SIGN] < 0.1
    # wires are thin: almost every wire pixel has a non-wire pixel within 2 px across the line
    img, lab = next((im, l) for im, l in (generate(s, 96) for s in range(50)) if (l == WIRE).sum() > 50)
    w = lab == WIRE
    near = np.zeros_like(w)
    for d in (-2, -1, 1, 2):
        near |= ~np.roll(w, d, 0) | ~np.roll(w, d, 1)
    assert near[w].mean() > 0.95


def test_dataset_contract_and_splits_do_not_overlap():
    tr, va = SyntheticSegmentation('train', 6, 40), SyntheticSegmentation('val', 6, 40)
    s = tr[0]
    assert set(s) >= {'image', 'label', 'name'} and s['image'].dtype == torch.float32 and s['label'].dtype == torch.int64
    check_batch(s['image'][None], s['label'][None], tr.num_classes, tr.ignore_index)
    assert not torch.equal(tr[0]['image'], va[0]['image'])
    assert torch.equal(tr[3]['label'], SyntheticSegmentation('train', 6, 40)[3]['label'])
    with pytest.raises(IndexError): tr[6]
    with pytest.raises(ValueError, match='split'): SyntheticSegmentation('tarin')


def test_cityscapes_layout_export(tmp_path):
    root = tmp_path / 'cs'
    counts = write_cityscapes_layout(root, num_train=3, num_val=2, size=32)
    assert counts == {'train': 3, 'val': 2}
    imgs = sorted(root.glob('leftImg8bit/*/*/*_leftImg8bit.png'))
    labs = sorted(root.glob('gtFine/*/*/*_gtFine_labelTrainIds.png'))
    insts = sorted(root.glob('gtFine/*/*/*_gtFine_instanceIds.png'))
    assert len(imgs) == len(labs) == len(insts) == 5
    lab = np.array(Image.open(labs[0])); inst = np.array(Image.open(insts[0]))
    assert lab.shape == (32, 32) and set(np.unique(lab)) <= set(range(len(CLASSES))) | {IGNORE_INDEX}
    obj = np.isin(lab, [CAR, BOAT, SIGN])
    assert (inst[obj] // 1000 == lab[obj]).all()               # instance ids are class·1000 + k
    with pytest.raises(FileExistsError): write_cityscapes_layout(root, 1, 1, 32)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]   # no temporary folder left behind
