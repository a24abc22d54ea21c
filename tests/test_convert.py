"""The authors' networks, as recorded from their repositories (facts/authors/), against the presets that stand for
them: every layout converts and loads strictly, the parts have the authors' sizes, and a wrong or damaged checkpoint
fails with one line that names the first key that does not fit."""
import json, re, subprocess
from pathlib import Path
import pytest
import torch
from ctxseg import presets as P
from ctxseg import convert as CV
from ctxseg.models.segmentor import build_model

FACTS = CV.facts_dir()
RECORDED = sorted(str(p.relative_to(FACTS).with_suffix('')) for p in FACTS.glob('*/*.json')
                  if p.stem not in ('recipes', 'equivalence'))


def _model(name, seed=0):
    facts = CV.read_facts(name)
    torch.manual_seed(seed)
    return facts, build_model(P.get(CV.AUTHORS_NETWORKS[name]['preset'], ['model.pretrained=']), facts['num_classes'])


def test_every_recorded_network_has_a_preset_or_a_reason():
    assert RECORDED, f'no recorded layouts under {FACTS}'
    assert set(RECORDED) == set(CV.AUTHORS_NETWORKS) | set(CV.NOT_BUILT), set(RECORDED) ^ (set(CV.AUTHORS_NETWORKS) | set(CV.NOT_BUILT))
    for name in RECORDED:
        facts = CV.read_facts(name)
        assert len(facts['commit']) == 40 and facts['repo'] and facts['files'], name


@pytest.mark.parametrize('name', sorted(CV.AUTHORS_NETWORKS))
def test_layout_converts_loads_strictly_and_parts_match(name):
    facts, model = _model(name)
    theirs = CV.random_state_dict(facts)
    sd = CV.convert_state_dict(theirs, model, facts['paper'])
    km = CV.CODE_BASES[facts['paper']]
    own = {k for k in model.state_dict() if any(re.fullmatch(p, k) for p in km.own_state)}
    assert set(sd) | own == set(model.state_dict()), sorted(set(model.state_dict()) - set(sd) - own)[:5]
    assert not set(sd) & own
    model.load_state_dict({**model.state_dict(), **sd}, strict=True)
    # every authors' value arrived, unchanged or moved as a whole (a permutation or a reshape keeps the numbers)
    ours = model.state_dict()
    for k, v in theirs.items():
        t = km.target(k, ours)
        dst = ours[CV._base(t)][int(t[t.index('[') + 1:-1])] if t.endswith(']') else ours[t]
        if any(re.fullmatch(pat, t) for pat, _ in km.transforms):     # moved as a whole: same numbers
            assert torch.equal(torch.sort(v.flatten()).values, torch.sort(dst.flatten()).values), (k, t)
        else: assert torch.equal(v.reshape(dst.shape).to(dst.dtype), dst), (k, t)
    assert CV.part_sizes(model) == CV.authors_parts(facts, CV.AUTHORS_NETWORKS[name].get('merge'))


def _one_line(e):
    msg = str(e.value)
    assert '\n' not in msg, msg
    return msg


def test_wrong_or_truncated_checkpoints_fail_with_one_line(tmp_path):
    name = 'region_contrast/decoder_contrast_cityscapes'
    facts, model = _model(name)
    theirs = CV.random_state_dict(facts)
    # another class count: the first key that differs, with both shapes
    wrong = {k: (torch.randn(21, *v.shape[1:]) if k == 'auxor.aux.4.weight' else v) for k, v in theirs.items()}
    with pytest.raises(CV.ConversionError) as e: CV.convert_state_dict(wrong, model, 'region_contrast')
    assert "'auxor.aux.4.weight' → 'aux_head.classifier.weight': checkpoint shape (21, 256, 1, 1), model shape (19, 256, 1, 1)" in _one_line(e)
    # a state dict cut short: the first of the model's keys that nothing fills
    short = dict(list(theirs.items())[:-20])
    with pytest.raises(CV.ConversionError) as e: CV.convert_state_dict(short, model, 'region_contrast')
    assert 'has no counterpart in the checkpoint' in _one_line(e)
    # another code base's checkpoint
    with pytest.raises(CV.ConversionError) as e: CV.convert_state_dict(theirs, model, 'mcibi')
    assert "the authors' key 'encoder.conv1.0.weight' (64, 3, 3, 3) has no counterpart" in _one_line(e)
    # a file truncated on disk, and one saved as the authors' trainer saves it (wrapped, DDP prefix)
    full = tmp_path / 'epoch_99.pth'
    torch.save({'epoch': 99, 'model_state': {f'module.{k}': v for k, v in theirs.items()}}, full)
    assert CV.load_authors(model, full, 'region_contrast')['loaded'] == len(theirs) - 2 * 19 + 2   # 19 queues → 1, 19 ptrs → 1
    cut = tmp_path / 'cut.pth'
    cut.write_bytes(full.read_bytes()[:len(full.read_bytes()) // 3])
    with pytest.raises(CV.ConversionError) as e: CV.load_authors(model, cut, 'region_contrast')
    assert str(cut) in _one_line(e)


def test_ctxseg_eval_with_the_authors_weights(tmp_path, ctxseg_cmd):
    "`ctxseg eval PRESET --weights authors:PAPER=PATH` on a Cityscapes-layout fixture: loads, evaluates, writes."
    from ctxseg.datasets import tiny_cityscapes, prepare
    prepare('cityscapes', tiny_cityscapes(tmp_path / 'raw', n=(1, 2)), tmp_path / 'cs', subset=True)
    facts = CV.read_facts('region_contrast/decoder_contrast_cityscapes')
    ck = tmp_path / 'regcon.pth'
    torch.save({'model_state': {f'module.{k}': v for k, v in CV.random_state_dict(facts).items()}}, ck)
    out = tmp_path / 'eval'
    r = subprocess.run([*ctxseg_cmd, 'eval', 'cityscapes_regcon_r50', '--weights', f'authors:region_contrast={ck}',
                        '--out', str(out), '--no-progress', '--set', f'data.root={tmp_path / "cs"}', 'eval.mode=whole',
                        'train.device=cpu'], capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr[-2000:]
    m = json.loads((out / 'eval_whole.json').read_text())
    assert m['weights'] == f'authors:region_contrast={ck}' and len(m['IoU']) == 19 and 0 <= m['aAcc'] <= 1
    assert 'through the region_contrast key map' in r.stdout
    # a preset without weights, and a checkpoint of another paper's code base: one clear line, exit 2
    r = subprocess.run([*ctxseg_cmd, 'eval', 'cityscapes_regcon_r50', '--no-progress'], capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and 'needs --weights' in r.stderr
    r = subprocess.run([*ctxseg_cmd, 'eval', 'cityscapes_regcon_r50', '--weights', f'authors:gald={ck}', '--no-progress',
                        '--set', f'data.root={tmp_path / "cs"}'], capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 2 and 'has no counterpart' in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.mark.parametrize('name', sorted(n for n, s in CV.AUTHORS_NETWORKS.items() if s.get('also')))
def test_presets_that_share_the_network_build_it(name):
    "A preset listed in `also` builds the same network as the main preset, up to its training-only loss method."
    spec, facts = CV.AUTHORS_NETWORKS[name], CV.read_facts(name)
    shapes = lambda p: {k: tuple(v.shape) for k, v in build_model(P.get(p, ['model.pretrained=']), facts['num_classes'])
                        .state_dict().items() if not k.startswith('method.')}
    ref = shapes(spec['preset'])
    for p in spec['also']: assert shapes(p) == ref, p
