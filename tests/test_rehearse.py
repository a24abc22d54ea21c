"""The rehearsal of the gpu presets (`ctxseg.rehearse`), at a quarter of the size, for one preset of each paper: a
dataset-layout fixture, two steps in float32 and bf16 autocast with every loss term on and finite, the DDP path on two
gloo processes with identical parameters and memories. The full-size rehearsal is a benchmark
(`python benchmarks/rehearse.py --all`), not a test."""
import json
import pytest
from ctxseg import presets as P
from ctxseg.rehearse import rehearse, summary, rehearsal_config, readiness_markdown

ONE_PER_PAPER = {   # preset: the loss terms it must produce
    'cityscapes_mcibi_r50': {'seg', 'aux', 'stage1'},
    'cityscapes_regcon_r50': {'seg', 'aux', 'region_contrast'},
    'cityscapes_pixcon_hr48': {'seg', 'contrast'},
    'cityscapes_gald_cgnl_ldv1_r50': {'seg', 'aux'},
    'contextrast_cityscapes_fcn_hr48': {'seg', 'contextrast'},
}


@pytest.mark.parametrize('preset', sorted(ONE_PER_PAPER))
def test_reduced_rehearsal(preset, tmp_path):
    rec = rehearse(preset, reduced=True, out=tmp_path / 'rec.json', progress=lambda s: None)
    assert rec['ok'], summary(rec)
    assert set(rec['terms']) == ONE_PER_PAPER[preset], rec['terms'].keys()
    assert set(rec['runs']) == {'fp32', 'bf16'} and all(len(r['steps']) == 2 for r in rec['runs'].values())
    assert rec['ddp']['ok'] and rec['ddp']['world'] == 2
    assert rec['flops_per_step'] > 0 and rec['gpu_memory']['gb'] > rec['gpu_memory']['states_gb'] > 0
    assert json.loads((tmp_path / 'rec.json').read_text())['preset'] == preset
    if preset.startswith('cityscapes_pixcon'):                       # its 5000-iteration warm-up switched off, and said so
        assert any('warmup_iters' in c for c in rec['changes'])
    # the readiness table shows it
    md = readiness_markdown(tmp_path / 'none')
    assert f'`{preset}` | not yet' in md
    (tmp_path / 'book').mkdir(); (tmp_path / 'book' / f'{preset}.json').write_text((tmp_path / 'rec.json').read_text())
    assert f'`{preset}` | reduced' in readiness_markdown(tmp_path / 'book')


def test_rehearsal_config_says_what_it_changes():
    c, changes = rehearsal_config(P.get('ade20k_mcibi_r101'), '/nowhere')
    assert c.model.head_kwargs['consistency_from_iter'] == 0 and any('consistency_from_iter' in s for s in changes)
    assert c.data.crop_size == [512, 512] and c.data.batch_size == 2 and c.train.iters == 2
    with pytest.raises(ValueError, match='gpu profile'): rehearse('smoke')
