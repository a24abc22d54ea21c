"""Recipe parity: every gpu preset against what its authors' code (or paper) sets, field by field (ctxseg.recipes)."""
import dataclasses
import pytest
from ctxseg import presets as P
from ctxseg import recipes as R

PRESETS = R.gpu_presets()


def test_every_gpu_preset_has_the_authors_recipe():
    assert len(PRESETS) >= 50
    assert sorted(R.AUTHORS) == sorted(PRESETS)


@pytest.mark.parametrize('preset', PRESETS)
def test_every_field_is_equal_or_a_named_deliberate_difference(preset):
    assert R.problems(preset) == []
    rows = R.recipe_rows(preset)
    for r in rows:
        assert r['where'], (preset, r['field'])                           # a source a reader can check
        if r['status'] == 'deliberate': assert r['differs'] and len(r['why']) > 20, (preset, r['field'])
    assert {r['field'] for r in rows} >= {*R.FIELDS, 'network', 'method'}
    assert R.recipe_markdown(preset).count('\n') == len(rows) + 1


def test_a_changed_value_is_caught():
    "The check can fail: a preset that drifts from the recipe, or a deliberate mark that no longer differs."
    preset = 'cityscapes_regcon_r50'
    facts = dict(R.AUTHORS[preset])
    facts['crop'] = dataclasses.replace(facts['crop'], value=[768, 768])
    assert R.problems(preset, {preset: facts}) == [f"{preset}: crop: MISMATCH (ours [769, 769], authors [768, 768])"]
    facts = dict(R.AUTHORS[preset])
    facts['precision'] = dataclasses.replace(facts['precision'], value='bf16 autocast')
    assert 'stale' in R.problems(preset, {preset: facts})[0]
    del facts['precision']
    assert 'no entry' in R.problems(preset, {preset: facts})[0]
    with pytest.raises(ValueError, match='needs a name and a reason'): R.Fact(1, 'x', differs='flag')


def test_the_ddp_scaling_row_follows_the_config():
    v = R.field_values(P.get('cityscapes_regcon_base_r50'))
    assert v['loss_scaling'] == 'sum / world size' and v['method'] == 'none'
    assert R.field_values(P.get('cityscapes_pixcon_hr48'))['loss_scaling'] == 'mean'
