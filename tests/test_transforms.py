"Joint image/label transforms (ctxseg.transforms): alignment, label values, crop cap, normalisation, seeding, bad input."
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ctxseg.configs import DataConfig
from ctxseg.data import BadInputError, SeededDataset
from ctxseg.transforms import (Compose, Normalize, Pad, PhotoMetricDistortion, RandomCrop, RandomFlip, RandomResize,
                               Resize, build_transforms, crop_ok, rescale_size, resize_label)

PALETTE = torch.tensor([[230, 30, 30], [30, 230, 30], [30, 30, 230], [230, 230, 30], [30, 230, 230]], dtype=torch.uint8)


def checkerboard(H=96, W=144, cell=12, shift=(0, 0)):
    "A 5-class checkerboard label (cells of `cell` px) and its image, each class painted in its own colour."
    yy, xx = torch.meshgrid(torch.arange(H), torch.arange(W), indexing='ij')
    lab = (((yy + shift[0]) // cell) + 2 * ((xx + shift[1]) // cell)) % len(PALETTE)
    img = PALETTE[lab].permute(2, 0, 1).contiguous()                                   # 3×H×W uint8
    return img, lab.to(torch.uint8)


def misaligned_pixels(img, lab, tol=1.5):
    """Pixels whose colour is exactly (within `tol`) one class's colour must carry that class's label (black:
    the ignore label of padding). Returns (number that do not, number of such pure-colour pixels).
    Bilinear mixing near a boundary gives colours of no class, which are not checked; a label shifted by one
    pixel against the image is caught at every boundary."""
    colours = torch.cat([PALETTE.float(), torch.zeros(1, 3)])                          # K+1 × 3
    ids = torch.tensor(list(range(len(PALETTE))) + [255])
    px = img.float().permute(1, 2, 0).reshape(-1, 3)                                   # N×3
    d = (px[:, None] - colours[None]).abs().amax(-1)                                   # N×(K+1)
    dmin, k = d.min(1)
    pure = dmin <= tol
    bad = pure & (ids[k] != lab.reshape(-1).long())
    return int(bad.sum()), int(pure.sum())


def random_geometric_pipeline(g):
    "A random sequence of 1–5 geometric transforms (resize, crop, flip, pad) drawn from `g`."
    def r(lo, hi): return lo + (hi - lo) * torch.rand((), generator=g).item()
    steps = []
    n_resize = 0
    for _ in range(int(torch.randint(1, 6, (), generator=g))):
        kind = int(torch.randint(0, 4, (), generator=g))
        if kind == 0 and n_resize < 2:            # at most two resizes, each ≥ 0.7, so cells stay ≥ 5 px
            n_resize += 1
            if torch.rand((), generator=g) < 0.5: steps.append(RandomResize(None, (0.7, 2.0)))
            else: steps.append(RandomResize((int(r(100, 300)), int(r(60, 200))), (0.7, 1.3)))
        elif kind == 1: steps.append(RandomCrop((int(r(30, 150)), int(r(30, 200))), cat_max_ratio=r(0.5, 1.0)))
        elif kind == 2: steps.append(RandomFlip(0.5))
        else: steps.append(Pad((int(r(40, 240)), int(r(40, 240)))))
    return steps


@pytest.mark.parametrize('seed', range(80))
def test_checkerboard_stays_aligned(seed):
    g = torch.Generator().manual_seed(seed)
    steps = random_geometric_pipeline(g)
    img, lab = checkerboard(120, 180, cell=20, shift=(seed % 7, seed % 5))
    x, y = Compose(steps)(img, lab, g)
    bad, n = misaligned_pixels(x, y)
    assert n > 0.2 * y.numel(), f"too few interior pixels to test ({n} of {y.numel()}): {steps}"
    assert bad == 0, f"{bad} of {n} interior pixels misaligned after {steps}"
    assert set(torch.unique(y).tolist()) <= set(range(len(PALETTE))) | {255}
    assert tuple(x.shape[1:]) == tuple(y.shape)


def test_alignment_check_can_fail():
    "The checker itself detects a one-pixel shift of the label against the image."
    img, lab = checkerboard()
    assert misaligned_pixels(img, lab)[0] == 0
    _, lab_shift = checkerboard(shift=(0, 1))
    assert misaligned_pixels(img, lab_shift)[0] > 0


def test_opencv_nearest_is_off_by_one_source_pixel():
    """Why 'nearest-exact' is the default: at a 3× reduction the bilinear image samples source pixel 3j+1 (the
    centre), and so does 'nearest-exact'; OpenCV's rule takes 3j and mislabels a pixel at every boundary."""
    img, lab = checkerboard(48, 48, cell=6, shift=(2, 2))     # boundaries between source pixels 3j and 3j+1
    size = (16, 16)
    x = F.interpolate(img[None].float(), size=size, mode='bilinear', align_corners=False)[0]
    assert torch.equal(x, img[:, 1::3, 1::3].float())
    bad, n = misaligned_pixels(x, resize_label(lab, size, 'nearest-exact'))
    assert bad == 0 and n == 256
    assert misaligned_pixels(x, resize_label(lab, size, 'nearest'))[0] > 0


def test_label_values_come_from_the_input_set():
    values = torch.tensor([0, 3, 7, 200], dtype=torch.uint8)
    g = torch.Generator().manual_seed(0)
    dc = DataConfig(dataset='cityscapes', crop_size=[80, 120], scale=[200, 100])
    tf = build_transforms(dc, train=True)
    for k in range(20):
        H, W = int(torch.randint(20, 120, (), generator=g)), int(torch.randint(20, 160, (), generator=g))
        lab = values[torch.randint(0, 4, (H, W), generator=g)]
        img = torch.randint(0, 256, (3, H, W), dtype=torch.uint8, generator=g)
        x, y = tf(img, lab, g)
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert tuple(x.shape) == (3, 80, 120) and tuple(y.shape) == (80, 120)
        assert set(torch.unique(y).tolist()) <= {0, 3, 7, 200, 255}
    # int64 labels beyond uint8 pass through the nearest resize untouched
    lab = torch.tensor([[1000, 5], [5, 1000]])
    assert set(resize_label(lab, (7, 5)).unique().tolist()) == {5, 1000}


def _crop_ok_reference(crop: np.ndarray, cat_max_ratio, ignore=255):
    labels, cnt = np.unique(crop, return_counts=True)
    cnt = cnt[labels != ignore]
    return len(cnt) > 1 and cnt.max() / cnt.sum() < cat_max_ratio


def test_crop_ok_matches_reference():
    rng = np.random.default_rng(0)
    for _ in range(300):
        k = rng.integers(1, 4)
        crop = rng.choice([0, 1, 2, 255][:k + 1], size=(rng.integers(1, 6), rng.integers(1, 6)),
                          p=rng.dirichlet(np.ones(k + 1)))
        r = rng.choice([0.5, 0.75, 0.9])
        assert crop_ok(torch.from_numpy(crop).to(torch.uint8), r) == _crop_ok_reference(crop, r)


def test_cat_max_ratio_respected_when_satisfiable():
    lab = torch.zeros(64, 64, dtype=torch.uint8); lab[:, 16:48] = 1; lab[:4] = 255   # ≈ half of the crops pass
    img = torch.zeros(3, 64, 64, dtype=torch.uint8)
    passed = 0
    for s in range(200):
        _, y = RandomCrop((32, 32), 0.75)(img, lab, torch.Generator().manual_seed(s))
        passed += _crop_ok_reference(y.numpy(), 0.75)
    assert passed >= 199          # fails only if all 11 draws fail (p ≈ 0.5^11 per crop)
    plain = sum(_crop_ok_reference(RandomCrop((32, 32))(img, lab, torch.Generator().manual_seed(s))[1].numpy(), 0.75)
                for s in range(200))
    assert plain < 150            # the cap is what makes the difference


def test_cat_max_ratio_gives_up_after_ten_redraws():
    "Unsatisfiable (one class): mmseg's loop draws the first box and 10 more, then keeps the last."
    lab = torch.zeros(50, 60, dtype=torch.uint8)
    img = torch.zeros(3, 50, 60, dtype=torch.uint8)
    crop = RandomCrop((20, 30), 0.75)
    g = torch.Generator().manual_seed(3)
    x, y = crop(img, lab, g)
    assert tuple(y.shape) == (20, 30)
    g2 = torch.Generator().manual_seed(3)
    for _ in range(11): crop.bbox(50, 60, g2)
    assert torch.equal(g.get_state(), g2.get_state())


def test_normalisation_hand_computed():
    img = torch.tensor([[[0, 255]], [[128, 10]], [[64, 200]]], dtype=torch.uint8)   # 3×1×2
    x, _ = Normalize('imagenet_rgb')(img, None)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    for c in range(3):
        for j in range(2):
            assert abs(x[c, 0, j].item() - (img[c, 0, j].item() / 255 - mean[c]) / std[c]) < 1e-5
    x, _ = Normalize('caffe_bgr')(img, None)
    bgr_mean = [104.008, 116.669, 122.679]
    for c in range(3):                     # output channel c is BGR channel c = input channel 2 - c
        for j in range(2):
            assert abs(x[c, 0, j].item() - (img[2 - c, 0, j].item() - bgr_mean[c])) < 1e-4
    with pytest.raises(ValueError, match='imagenet_rgb'): Normalize('bgr')
    dc = DataConfig(dataset='cityscapes', normalize='caffe_bgr')
    x, y = build_transforms(dc, train=False)(img, torch.zeros(1, 2, dtype=torch.uint8))
    assert abs(x[0, 0, 0].item() - (64 - 104.008)) < 1e-4 and y.dtype == torch.int64


def test_photometric_brightness_only_and_label_untouched():
    img = torch.randint(0, 256, (3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    lab = torch.randint(0, 5, (16, 16), dtype=torch.uint8)
    pmd = PhotoMetricDistortion(brightness_delta=32, contrast_range=(1, 1), saturation_range=(1, 1), hue_delta=0)
    seen_change = False
    for s in range(10):
        g = torch.Generator().manual_seed(s)
        x, y = pmd(img, lab, g)
        assert y is lab and x.min() >= 0 and x.max() <= 255
        g = torch.Generator().manual_seed(s)           # replay the draws: coin, then beta
        beta = (-32 + 64 * torch.rand((), generator=g).item()) if torch.randint(0, 2, (), generator=g).item() else 0.0
        assert torch.allclose(x, (img.float() + beta).clamp(0, 255), atol=1e-3)
        seen_change |= beta != 0
    assert seen_change


def test_deterministic_under_a_generator_and_resumable():
    dc = DataConfig(dataset='cityscapes', crop_size=[32, 48], scale=[128, 64])
    tf = build_transforms(dc, train=True)
    img, lab = checkerboard(64, 128)
    a = [tf(img, lab, g) for g in [torch.Generator().manual_seed(1)] for _ in range(1)]
    b = tf(img, lab, torch.Generator().manual_seed(1))
    assert torch.equal(a[0][0], b[0]) and torch.equal(a[0][1], b[1])
    c = tf(img, lab, torch.Generator().manual_seed(2))
    assert not torch.equal(b[0], c[0])
    # resume: the generator state after k samples is all that is needed to continue
    g = torch.Generator().manual_seed(5)
    tf(img, lab, g)
    state = g.get_state()
    rest = [tf(img, lab, g) for _ in range(3)]
    g2 = torch.Generator(); g2.set_state(state)
    for (x1, y1), (x2, y2) in zip(rest, [tf(img, lab, g2) for _ in range(3)]):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_global_rng_seeded_by_SeededDataset():
    "Without a generator the draws come from torch's RNG, which SeededDataset seeds per sample seed."
    dc = DataConfig(dataset='cityscapes', crop_size=[32, 48], scale=[128, 64])
    tf = build_transforms(dc, train=True)
    img, lab = checkerboard(64, 128)

    class DS(torch.utils.data.Dataset):
        num_classes, ignore_index = 5, 255
        def __len__(self): return 4
        def __getitem__(self, i):
            x, y = tf(img, lab)
            return {'image': x, 'label': y}

    sd = SeededDataset(DS())
    before = torch.get_rng_state()
    s1, s2, s3 = sd[(0, 11)], sd[(2, 11)], sd[(0, 12)]
    assert torch.equal(torch.get_rng_state(), before)
    assert torch.equal(s1['image'], s2['image']) and torch.equal(s1['label'], s2['label'])
    assert not torch.equal(s1['image'], s3['image'])


@pytest.mark.parametrize('image,label,match', [
    (torch.zeros(3, 8, 8), torch.zeros(8, 8, dtype=torch.uint8), 'uint8'),
    (torch.zeros(8, 8, 3, dtype=torch.uint8), torch.zeros(8, 8, dtype=torch.uint8), '3×H×W'),
    (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.zeros(8, 8, dtype=torch.uint8), '3×H×W'),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(8, 8), 'integer'),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(8, 7, dtype=torch.uint8), 'does not match'),
    (torch.zeros(3, 8, 8, dtype=torch.uint8), torch.zeros(1, 8, 8, dtype=torch.uint8), 'does not match'),
    (np.zeros((3, 8, 8), np.uint8), torch.zeros(8, 8, dtype=torch.uint8), 'uint8 tensor'),
])
def test_bad_input_is_named(image, label, match):
    tf = build_transforms(DataConfig(dataset='cityscapes', crop_size=[4, 4], scale=[16, 16]), train=True)
    with pytest.raises(BadInputError, match=match):
        tf(image, label)


def test_bad_config_is_named():
    with pytest.raises(ValueError, match='ratio_range'): RandomResize((10, 10), (2.0, 1.0))
    with pytest.raises(ValueError, match='nearest'): resize_label(torch.zeros(2, 2, dtype=torch.uint8), (4, 4), 'bilinear')


def test_mmseg_rescale_and_eval_resize():
    assert rescale_size(1024, 2048, (1024, 2048)) == (1024, 2048)
    assert rescale_size(512, 683, (2048, 512)) == (512, 683)
    img, lab = checkerboard(40, 80)
    x, y = Resize((40, 20))(img, lab)
    assert tuple(y.shape) == (20, 40) and x.shape[1:] == y.shape
