"""ctxseg.losses and ctxseg.metrics against straightforward references written here (sort-based OHEM,
per-pixel counting, numpy/scipy morphology) and against cityscapesscripts' own evaluation for iIoU."""
import math, os
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import ndimage

from ctxseg.losses import (cross_entropy, ohem_ce_per_image, ohem_ce_per_batch, ohem_mask_per_image,
                           ohem_mask_per_batch, SegLoss)
from ctxseg.metrics import (confusion_matrix, miou, pixel_accuracy, mean_accuracy, fw_iou, boundary_fscore,
                            boundary_fscore_stats, boundary_iou, boundary_iou_stats, instance_iou_counts, iiou,
                            SegMetrics, CITYSCAPES_AVG_INSTANCE_SIZE)

IGN = 255


# ----------------------------------------------------------------------------------------------- losses
def _quantised_logits(B, K, H, W, g, levels=3):
    "Logits taking few distinct values, so that many pixels share exactly the same GT probability (ties)."
    return torch.randint(0, levels, (B, K, H, W), generator=g).double()


def _gt_prob(logits, target):
    p = torch.softmax(logits.float(), 1)
    return p.gather(1, target.clamp(0, logits.shape[1] - 1).unsqueeze(1)).squeeze(1)


def ref_mask_per_image(logits, target, thresh, min_kept, ignore=IGN):
    "ssseg/mmseg OHEMPixelSampler, written from its description: sort, index min(min_kept·B, n−1), keep p < τ."
    B = logits.shape[0]
    p, valid = _gt_prob(logits, target), target != ignore
    vals = sorted(p[valid].tolist())
    if not vals: return torch.zeros_like(valid)
    tau = max(vals[min(min_kept * B, len(vals) - 1)], thresh)
    return valid & (p < torch.tensor(tau, dtype=torch.float32))


def ref_mask_per_batch(logits, target, thresh, min_kept, ignore=IGN):
    "TorchSeg OhemCrossEntropy2dTensor, written from its description: m-th smallest, keep p ≤ τ, m > n → all."
    p, valid = _gt_prob(logits, target), target != ignore
    vals = sorted(p[valid].tolist())
    if min_kept > len(vals) or min_kept <= 0: return valid
    tau = max(vals[min_kept - 1], thresh)
    return valid & (p <= torch.tensor(tau, dtype=torch.float32))


def ref_ce(logits, target, keep, weight=None):
    "Mean over kept pixels of w_y·(−log softmax_y), divided by Σ w_y; 0 when nothing is kept (python loop)."
    logp = torch.log_softmax(logits.double(), 1)
    num = den = 0.0
    for b, i, j in keep.nonzero().tolist():
        c = int(target[b, i, j]); w = 1.0 if weight is None else float(weight[c])
        num += -w * float(logp[b, c, i, j]); den += w
    return num / den if den > 0 else 0.0


def _cases():
    g = torch.Generator().manual_seed(0)
    for trial in range(40):
        B, K, H, W = int(torch.randint(1, 4, (1,), generator=g)), 3, 5, 7
        z = _quantised_logits(B, K, H, W, g) if trial % 2 == 0 else torch.randn(B, K, H, W, generator=g, dtype=torch.float64) * 2
        y = torch.randint(0, K, (B, H, W), generator=g)
        y[torch.rand(y.shape, generator=g) < 0.2] = IGN
        if trial % 5 == 1: y[0] = IGN                      # an all-ignored image in the batch
        if trial % 10 == 3: y[:] = IGN                     # an all-ignored batch
        thresh = [0.0, 0.3, 0.7, 1.0][trial % 4]
        min_kept = [1, 3, 10, 25, 1000][trial % 5]         # 1000 > every valid count
        yield z, y, thresh, min_kept


def test_ohem_quantised_logits_have_ties():
    g = torch.Generator().manual_seed(0)
    z = _quantised_logits(2, 3, 5, 7, g); y = torch.randint(0, 3, (2, 5, 7), generator=g)
    p = _gt_prob(z, y)
    assert p.unique().numel() < p.numel() // 3           # many exact ties


@pytest.mark.parametrize('case', list(range(40)))
def test_ohem_masks_match_sort_reference(case):
    z, y, thresh, min_kept = list(_cases())[case]
    test_img = ohem_mask_per_image(z, y, thresh, min_kept)
    test_bat = ohem_mask_per_batch(z, y, thresh, min_kept)
    assert torch.equal(test_img, ref_mask_per_image(z, y, thresh, min_kept))
    assert torch.equal(test_bat, ref_mask_per_batch(z, y, thresh, min_kept))
    w = torch.tensor([0.5, 2.0, 1.0])
    for f, m in ((ohem_ce_per_image, test_img), (ohem_ce_per_batch, test_bat)):
        for weight in (None, w):
            zz = z.clone().requires_grad_(True)
            loss = f(zz, y, thresh, min_kept, weight=weight)
            assert math.isfinite(loss.item())
            assert loss.item() == pytest.approx(ref_ce(z, y, m, weight), abs=1e-10)
            loss.backward()
            gsum = zz.grad.abs().sum(1)                    # gradient only through kept pixels
            assert (gsum[~m] == 0).all() and (not m.any() or gsum[m].sum() > 0)


def test_ohem_ties_at_threshold():
    "Ties at τ: per-image (strict <) drops all of them, per-batch (≤) keeps all of them."
    p = torch.tensor([0.1, 0.2, 0.2, 0.2, 0.6, 0.9], dtype=torch.float64)
    z = torch.stack([p.log(), (1 - p).log()]).view(1, 2, 1, -1); y = torch.zeros(1, 1, 6, dtype=torch.long)
    assert ohem_mask_per_image(z, y, 0.05, 2).sum() == 1            # τ = p_(2) = 0.2, keep p < 0.2
    assert ohem_mask_per_batch(z, y, 0.05, 2).sum() == 4            # τ = p_(1) = 0.2, keep p ≤ 0.2
    assert ohem_mask_per_image(z, y, 0.05, 100).sum() == 5          # n ≤ mB: τ = max p, the max is dropped
    assert ohem_mask_per_batch(z, y, 0.05, 100).sum() == 6          # m > n: no OHEM


def test_ohem_min_kept_scales_with_batch_only_per_image():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(3, 4, 10, 10, generator=g) * 3; y = torch.randint(0, 4, (3, 10, 10), generator=g)
    assert ohem_mask_per_image(z, y, 0.0, 7).sum() == 21
    assert ohem_mask_per_batch(z, y, 0.0, 7).sum() == 7


def test_cross_entropy_matches_torch_and_never_nan():
    g = torch.Generator().manual_seed(2)
    z = torch.randn(2, 5, 6, 7, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 5, (2, 6, 7), generator=g); y[0, :3] = IGN
    w = torch.rand(5, generator=g, dtype=torch.float64) + 0.1
    for weight in (None, w):
        for red in ('mean', 'sum', 'none'):
            assert torch.allclose(cross_entropy(z, y, weight, reduction=red),
                                  F.cross_entropy(z, y, weight, ignore_index=IGN, reduction=red), atol=1e-12)
    for f in (lambda a, b: cross_entropy(a, b), lambda a, b: ohem_ce_per_image(a, b, 0.7, 5),
              lambda a, b: ohem_ce_per_batch(a, b, 0.7, 5), lambda a, b: SegLoss('ohem_batch')(a, b)):
        zz = z.detach().clone().requires_grad_(True)
        loss = f(zz, torch.full_like(y, IGN))
        assert loss.item() == 0.0 and loss.requires_grad
        loss.backward()
        assert torch.isfinite(zz.grad).all() and zz.grad.abs().sum() == 0
    # zero class weights on every present class: still 0, not NaN
    assert cross_entropy(z, torch.zeros_like(y), torch.tensor([0., 1., 1., 1., 1.], dtype=torch.float64)).item() == 0.0
    with pytest.raises(ValueError): cross_entropy(z, y, reduction='avg')


@pytest.mark.parametrize('align', [False, True])
def test_segloss_upsamples_then_applies_the_named_loss(align):
    g = torch.Generator().manual_seed(3)
    lo = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64); y = torch.randint(0, 3, (2, 20, 24), generator=g)
    y[:, :2] = IGN
    up = F.interpolate(lo, size=(20, 24), mode='bilinear', align_corners=align)
    kw = dict(ignore_index=IGN, ohem_thresh=0.6, ohem_min_kept=40, align_corners=align, class_weights=[1., .5, 2.])
    w = torch.tensor([1., .5, 2.], dtype=torch.float64)
    assert SegLoss('ce', **kw)(lo, y).item() == pytest.approx(F.cross_entropy(up, y, w, ignore_index=IGN).item(), abs=1e-9)
    assert SegLoss('ohem_image', **kw)(lo, y).item() == pytest.approx(
        ref_ce(up, y, ref_mask_per_image(up, y, 0.6, 40), w), abs=1e-9)
    assert SegLoss('ohem_batch', **kw)(lo, y).item() == pytest.approx(
        ref_ce(up, y, ref_mask_per_batch(up, y, 0.6, 40), w), abs=1e-9)
    m = ref_mask_per_image(up, y, 0.6, 40)
    mm = SegLoss('ohem_image', ohem_normalize='all', **kw)(lo, y).item()
    assert mm == pytest.approx(ref_ce(up, y, m, w) * float(w[y[m]].sum()) / y.numel(), abs=1e-9)
    assert SegLoss('ce').ignore_index == IGN


# ---------------------------------------------------------------------------------------------- metrics
def _blocky(shape, C, g, cell):
    B, H, W = shape
    x = torch.randint(0, C, (B, 1, -(-H // cell), -(-W // cell)), generator=g)
    return x.repeat_interleave(cell, 2).repeat_interleave(cell, 3)[:, 0, :H, :W]


def _random_pair(g, B=2, C=5, H=23, W=29, cell=4, absent=(3,), pred_absent=(4,), both_absent=()):
    "Blocky GT and prediction with ignore pixels, out-of-range GT, classes absent from GT / prediction / both."
    t = _blocky((B, H, W), C, g, cell)
    p = torch.where(torch.rand(t.shape, generator=g) < 0.6, t, _blocky((B, H, W), C, g, cell + 1))
    for c in absent + both_absent: t[t == c] = 0
    for c in pred_absent + both_absent: p[p == c] = 1
    t[torch.rand(t.shape, generator=g) < 0.1] = IGN
    t[0, 0, :3] = C + 2                                    # outside [0, C), not ignore: not evaluated
    return p, t


def ref_counts(p, t, C):
    "Brute-force per-class TP / FP / FN and totals by looping over pixels."
    tp, fp, fn, gtn = [0] * C, [0] * C, [0] * C, [0] * C
    n = correct = 0
    for a, b in zip(p.flatten().tolist(), t.flatten().tolist()):
        if b == IGN or not 0 <= b < C: continue
        n += 1; gtn[b] += 1
        if a == b: tp[a] += 1; correct += 1
        else: fp[a] += 1; fn[b] += 1
    return tp, fp, fn, gtn, n, correct


@pytest.mark.parametrize('seed', range(5))
def test_confusion_matrix_and_region_metrics_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    C = 6
    p, t = _random_pair(g, C=C, both_absent=(5,))
    cm = confusion_matrix(p, t, C)
    ref = np.zeros((C, C), dtype=np.int64)
    for a, b in zip(p.flatten().tolist(), t.flatten().tolist()):
        if b != IGN and 0 <= b < C: ref[b, a] += 1
    assert np.array_equal(cm.numpy(), ref) and cm.dtype == torch.long
    tp, fp, fn, gtn, n, correct = ref_counts(p, t, C)
    iou_ref = [tp[c] / (tp[c] + fp[c] + fn[c]) if tp[c] + fp[c] + fn[c] else float('nan') for c in range(C)]
    m, iou = miou(cm)
    assert iou.tolist() == pytest.approx(iou_ref, nan_ok=True, abs=1e-12)
    assert math.isnan(iou_ref[5]) and iou_ref[3] == 0 and iou_ref[4] == 0 and gtn[3] == 0 and fp[4] == 0
    assert m == pytest.approx(np.nanmean(iou_ref), abs=1e-12)
    assert pixel_accuracy(cm) == pytest.approx(correct / n, abs=1e-12)
    acc_ref = [tp[c] / gtn[c] for c in range(C) if gtn[c]]
    assert mean_accuracy(cm) == pytest.approx(sum(acc_ref) / len(acc_ref), abs=1e-12)
    assert fw_iou(cm) == pytest.approx(sum(gtn[c] / n * iou_ref[c] for c in range(C) if gtn[c]), abs=1e-12)
    # halves add up to the whole (what all_reduce relies on)
    assert torch.equal(confusion_matrix(p[:1], t[:1], C) + confusion_matrix(p[1:], t[1:], C), cm)
    assert torch.equal(confusion_matrix(p[..., :11], t[..., :11], C) + confusion_matrix(p[..., 11:], t[..., 11:], C), cm)


def test_absent_classes_in_miou():
    t = torch.tensor([0, 0, 1, 1]); p = torch.tensor([0, 2, 1, 1])
    m, iou = miou(confusion_matrix(p, t, 4))
    assert iou[0] == 0.5 and iou[1] == 1.0 and iou[2] == 0.0 and math.isnan(iou[3])   # 2: predicted only → 0; 3: NaN
    assert m == pytest.approx(0.5)
    with pytest.raises(ValueError, match='outside'): confusion_matrix(torch.tensor([4]), torch.tensor([1]), 4)
    with pytest.raises(ValueError, match='outside'): confusion_matrix(torch.tensor([-2]), torch.tensor([1]), 4)
    assert confusion_matrix(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 3).sum() == 0


# -- boundary F-score: GSCNN's utils/f_boundary.py procedure, re-written with numpy/scipy and python loops
def _seg2bmap(seg):
    seg = seg.astype(bool); h, w = seg.shape
    b = np.zeros_like(seg)
    for i in range(h):
        for j in range(w):
            nb = [seg[i, j + 1] if j + 1 < w else None, seg[i + 1, j] if i + 1 < h else None,
                  seg[i + 1, j + 1] if i + 1 < h and j + 1 < w else None]
            b[i, j] = any(v is not None and v != seg[i, j] for v in nb)
    return b


def _disk(r):
    R = int(math.floor(r)); ax = np.arange(-R, R + 1)
    return (ax[:, None] ** 2 + ax[None, :] ** 2) <= r * r


def _db_eval_boundary(fg, gt, ignore, r):
    fg = fg.copy(); gt = gt.copy(); fg[ignore] = 0; gt[ignore] = 0
    fb, gb = _seg2bmap(fg), _seg2bmap(gt)
    fd = ndimage.binary_dilation(fb, _disk(r)) if r >= 1 else fb
    gd = ndimage.binary_dilation(gb, _disk(r)) if r >= 1 else gb
    n_fg, n_gt = fb.sum(), gb.sum()
    fm, gm = (fb & gd).sum(), (gb & fd).sum()
    if n_fg == 0 and n_gt > 0: P, R = 1, 0
    elif n_fg > 0 and n_gt == 0: P, R = 0, 1
    elif n_fg == 0 and n_gt == 0: P, R = 1, 1
    else: P, R = fm / n_fg, gm / n_gt
    F_ = 0 if P + R == 0 else 2 * P * R / (P + R)
    return F_, fm, n_fg, gm, n_gt


def ref_boundary_fscore(p, t, C, tols):
    out_img, out_ds = {}, {}
    for tol in tols:
        Fs = np.zeros(C); cnt = np.zeros((C, 4))
        for b in range(p.shape[0]):
            pb, tb = p[b].numpy(), t[b].numpy()
            ignore = (tb == IGN) | (tb < 0) | (tb >= C)
            H, W = tb.shape
            r = tol if tol >= 1 else math.ceil(tol * math.sqrt(H * H + W * W))
            for c in range(C):
                F_, *k = _db_eval_boundary((pb == c).astype(np.uint8), (tb == c).astype(np.uint8), ignore, r)
                Fs[c] += F_; cnt[c] += k
        out_img[tol] = float(np.mean(Fs / p.shape[0]))
        per = []
        for c in range(C):
            fm, nf, gm, ng = cnt[c]
            if nf == 0 and ng == 0: per.append(np.nan); continue
            P = fm / nf if nf else 1.0; R = gm / ng if ng else 1.0
            per.append(0.0 if P + R == 0 else 2 * P * R / (P + R))
        out_ds[tol] = float(np.nanmean(per))
    return out_img, out_ds


@pytest.mark.parametrize('seed', range(3))
def test_boundary_fscore_matches_gscnn_procedure(seed):
    g = torch.Generator().manual_seed(10 + seed)
    p, t = _random_pair(g, B=2, C=4, H=21, W=26, cell=5, absent=(2,), pred_absent=(3,))
    tols = (1, 2, 3, 0.05)                                  # 0.05 of the diagonal → ceil(0.05·33.4) = 2 px
    ref_img, ref_ds = ref_boundary_fscore(p, t, 4, tols)
    got_img = boundary_fscore(p, t, 4, tols)
    got_ds = boundary_fscore(p, t, 4, tols, average='dataset')
    for tol in tols:
        assert got_img[tol] == pytest.approx(ref_img[tol], abs=1e-12)
        assert got_ds[tol] == pytest.approx(ref_ds[tol], abs=1e-12)
    # streaming: statistics of two halves sum to those of the whole batch
    s = boundary_fscore_stats(p, t, 4, tols)
    assert torch.allclose(boundary_fscore_stats(p[:1], t[:1], 4, tols) + boundary_fscore_stats(p[1:], t[1:], 4, tols), s)


# -- boundary IoU: the reference procedure (pad 1 zero, 3×3 erosion iterated d times, crop) with scipy
def _mask_to_boundary(mask, d):
    padded = np.pad(mask.astype(bool), 1, constant_values=False)
    eroded = ndimage.binary_erosion(padded, np.ones((3, 3), bool), iterations=d, border_value=1)[1:-1, 1:-1]
    return mask.astype(bool) & ~eroded


@pytest.mark.parametrize('seed', range(3))
def test_boundary_iou_matches_reference_procedure(seed):
    g = torch.Generator().manual_seed(20 + seed)
    C = 4
    p, t = _random_pair(g, B=2, C=C, H=30, W=33, cell=6, absent=(2,), pred_absent=(3,))
    for d in (1, 2, 5, 0.05):
        inter = np.zeros(C); union = np.zeros(C)
        for b in range(2):
            tb, pb = t[b].numpy(), p[b].numpy()
            valid = (tb != IGN) & (tb >= 0) & (tb < C)
            w = d if d >= 1 else max(1, int(round(d * math.hypot(*tb.shape))))
            for c in range(C):
                gb_ = _mask_to_boundary((tb == c) & valid, w); pb_ = _mask_to_boundary((pb == c) & valid, w)
                inter[c] += (gb_ & pb_).sum(); union[c] += (gb_ | pb_).sum()
        ref = np.where(union > 0, inter / np.maximum(union, 1), np.nan)
        m, per = boundary_iou(p, t, C, d)
        assert per.tolist() == pytest.approx(ref.tolist(), nan_ok=True, abs=1e-12)
        assert m == pytest.approx(np.nanmean(ref), abs=1e-12)
        st = boundary_iou_stats(p, t, C, d)
        assert torch.equal(boundary_iou_stats(p[:1], t[:1], C, d) + boundary_iou_stats(p[1:], t[1:], C, d), st)


# -- Cityscapes iIoU: cityscapesscripts' own evaluation on PNG files
def _cityscapes_example(g, n=3, H=48, W=96, cell=8):
    from cityscapesscripts.helpers.labels import labels
    lab_ids = torch.tensor([l.id for l in labels if l.id >= 0])
    id2train = torch.full((256,), IGN, dtype=torch.long)
    for l in labels:
        if l.id >= 0: id2train[l.id] = l.trainId if 0 <= l.trainId < 255 else IGN
    train2id = torch.tensor([next(l.id for l in labels if l.trainId == c) for c in range(19)])
    gts, insts, preds = [], [], []
    for _ in range(n):
        lid = lab_ids[_blocky((1, H, W), len(lab_ids), g, cell)[0]]                 # label ids, blocky
        blocks = torch.arange((H // cell) * (W // cell)).view(H // cell, W // cell)
        blocks = blocks.repeat_interleave(cell, 0).repeat_interleave(cell, 1)
        inst = lid.clone()
        has = lid >= 24                                                              # instance classes (24…33)
        crowd = (blocks % 5 == 0)                                                    # some regions are crowds
        inst[has & ~crowd] = lid[has & ~crowd] * 1000 + blocks[has & ~crowd] % 7     # instances may span blocks
        tr = id2train[lid]
        guess = torch.where(torch.rand(tr.shape, generator=g) < 0.7, tr, _blocky((1, H, W), 19, g, cell // 2)[0])
        pr = torch.where(guess == IGN, _blocky((1, H, W), 19, g, cell)[0], guess)
        gts.append(lid); insts.append(inst); preds.append(pr)
    return torch.stack(gts), torch.stack(insts), torch.stack(preds), id2train, train2id


def test_iiou_matches_cityscapesscripts(tmp_path, monkeypatch):
    from PIL import Image
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as ev
    from cityscapesscripts.helpers.labels import labels
    if not hasattr(np, 'in1d'):                                     # removed in numpy 2.4; the script still calls it
        monkeypatch.setattr(np, 'in1d', lambda a, b, invert=False: np.isin(a, b, invert=invert).ravel(), raising=False)
    g = torch.Generator().manual_seed(5)
    lid, inst, pred, id2train, train2id = _cityscapes_example(g)
    gt_files, pred_files = [], []
    for i in range(lid.shape[0]):
        gf = tmp_path / f"city_{i:06d}_000019_gtFine_labelIds.png"
        Image.fromarray(lid[i].numpy().astype(np.uint8)).save(gf)
        Image.fromarray(inst[i].numpy().astype(np.uint16)).save(str(gf).replace('labelIds', 'instanceIds'))
        pf = tmp_path / f"city_{i:06d}_000019_pred.png"
        Image.fromarray(train2id[pred[i]].numpy().astype(np.uint8)).save(pf)
        gt_files.append(str(gf)); pred_files.append(str(pf))
    args = ev.args
    for k, v in dict(quiet=True, JSONOutput=False, evalPixelAccuracy=False, evalInstLevelScore=True).items():
        monkeypatch.setattr(args, k, v, raising=False)
    res = ev.evaluateImgLists(pred_files, gt_files, args)

    # ours: train ids, instances as they are
    target = id2train[lid]
    cm = confusion_matrix(pred, target, 19)
    cnt = instance_iou_counts(pred, target, inst, 19)
    m, iou = miou(cm)
    im, ii = iiou(cm, cnt)
    for l in labels:
        if not 0 <= l.trainId < 19: continue
        assert iou[l.trainId].item() == pytest.approx(res['classScores'][l.name], nan_ok=True, abs=1e-12), l.name
        assert ii[l.trainId].item() == pytest.approx(res['classInstScores'][l.name], nan_ok=True, abs=1e-12), l.name
    assert m == pytest.approx(res['averageScoreClasses'], abs=1e-12)
    assert im == pytest.approx(res['averageScoreInstClasses'], abs=1e-12)
    assert not math.isnan(im) and sum(not math.isnan(v) for v in ii.tolist()) >= 6
    # our table is theirs, keyed by train id
    assert {l.trainId: args.avgClassSize[l.name] for l in labels
            if l.hasInstances and not l.ignoreInEval} == CITYSCAPES_AVG_INSTANCE_SIZE
    # streaming: per-image counts add up
    parts = sum(instance_iou_counts(pred[i:i + 1], target[i:i + 1], inst[i:i + 1], 19) for i in range(pred.shape[0]))
    assert torch.allclose(parts, cnt, rtol=1e-12)


def test_iiou_no_instances_and_errors():
    t = torch.zeros(1, 4, 4, dtype=torch.long); p = t.clone(); ins = torch.full_like(t, 7)
    cnt = instance_iou_counts(p, t, ins, 19)
    assert cnt.shape == (19, 2) and cnt.sum() == 0
    m, ii = iiou(confusion_matrix(p, t, 19), cnt)
    assert math.isnan(m) and torch.isnan(ii).all()
    with pytest.raises(ValueError, match='outside'): instance_iou_counts(p, t, ins, 5)


# -- SegMetrics: streaming, reduction, compute
def test_segmetrics_streams_and_reports():
    g = torch.Generator().manual_seed(7)
    p, t = _random_pair(g, B=4, C=5, H=24, W=24, absent=(), pred_absent=(), both_absent=(4,))
    sm = SegMetrics(5, boundary_tolerances=(1, 3), boundary_iou_widths=(2,))
    for i in range(4): sm.update(p[i:i + 1], t[i:i + 1])
    sm.all_reduce()
    r = sm.compute()
    m, iou = miou(confusion_matrix(p, t, 5))
    assert r['mIoU'] == pytest.approx(m, abs=1e-12) and 0 <= r['mIoU'] <= 1
    assert r['IoU'] == pytest.approx(iou.tolist(), nan_ok=True) and isinstance(r['IoU'][0], float)
    assert math.isnan(r['IoU'][4]) and type(r['IoU'][4]) is float and all(0 <= v <= 1 for v in r['IoU'][:4])
    assert r['aAcc'] == pytest.approx(pixel_accuracy(confusion_matrix(p, t, 5)))
    bf = boundary_fscore(p, t, 5, (1, 3))
    assert r['BF@1'] == pytest.approx(bf[1], abs=1e-12) and r['BF@3'] == pytest.approx(bf[3], abs=1e-12)
    assert r['bIoU@2'] == pytest.approx(boundary_iou(p, t, 5, 2)[0], abs=1e-12)
    assert 'iIoU' not in r
    with pytest.raises(RuntimeError): sm.all_reduce()
    sm.reset(); sm.update(p, t); assert sm.compute()['mIoU'] == pytest.approx(m, abs=1e-12)
    with pytest.raises(ValueError, match='avg_instance_size'):
        SegMetrics(5).update(p, t, torch.zeros_like(t))


def _ddp_worker(rank, world, init_file, p, t, ins, q):
    import torch.distributed as dist
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=world)
    try:
        sm = SegMetrics(19, boundary_tolerances=(2,), boundary_iou_widths=(3,))
        sm.update(p[rank::world], t[rank::world], ins[rank::world])
        sm.all_reduce()
        plain = SegMetrics(19)                               # no boundary metrics: empty count tensors
        plain.update(p[rank::world], t[rank::world]); plain.all_reduce()
        q.put((rank, {**sm.compute(), 'plain_mIoU': plain.compute()['mIoU']}))
    finally:
        dist.destroy_process_group()


def test_segmetrics_all_reduce_two_processes(tmp_path):
    import torch.multiprocessing as mp
    g = torch.Generator().manual_seed(9)
    lid, inst, pred, id2train, _ = _cityscapes_example(g, n=4, H=32, W=48)
    target = id2train[lid]
    ctx = mp.get_context('spawn'); q = ctx.Queue()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, str(tmp_path / 'init'), pred, target, inst, q)) for r in range(2)]
    for pr in procs: pr.start()
    out = dict(q.get(timeout=120) for _ in procs)
    for pr in procs: pr.join(timeout=60); assert pr.exitcode == 0
    single = SegMetrics(19, boundary_tolerances=(2,), boundary_iou_widths=(3,))
    single.update(pred, target, inst)
    ref = {**single.compute(), 'plain_mIoU': miou(confusion_matrix(pred, target, 19))[0]}
    for r in (0, 1):
        assert set(out[r]) == set(ref) and 'iIoU' in ref
        for k, v in ref.items():
            assert out[r][k] == pytest.approx(v, nan_ok=True, abs=1e-12), k
