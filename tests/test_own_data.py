"""The page "Train on your own data" (book/own_data.md), command by command, on a small folder in its layout: the
preparation, a short training of the preset it names, the evaluation; and bad folders failing with one line and
nothing written (`ctxseg prepare folder`, `ctxseg.datasets.prepare_folder`)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ctxseg.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLASSES = ['background', 'crack', 'stain']


def folder(root: Path, n: int = 10, h: int = 40, w: int = 56, seed: int = 0) -> Path:
    "A folder dataset: random images, label maps of 8×8 blocks of the classes and of 255 (unlabelled)."
    g = np.random.default_rng(seed)
    for d in ('images', 'labels'): (root / d).mkdir(parents=True)
    (root / 'classes.json').write_text(json.dumps({'classes': CLASSES, 'palette': [[0, 0, 0], [230, 25, 75], [60, 180, 75]]}))
    for i in range(n):
        Image.fromarray(g.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / 'images' / f'{i:04d}.jpg', quality=95)
        blocks = g.choice([0, 1, 2, 255], size=(h // 8, w // 8), p=[.6, .15, .15, .1]).astype(np.uint8)
        Image.fromarray(np.kron(blocks, np.ones((8, 8), np.uint8))).save(root / 'labels' / f'{i:04d}.png')
    return root


def page_commands() -> list[str]:
    "The `ctxseg` commands of the page, continuation lines joined."
    code, inside = [], False
    for line in (ROOT / 'book' / 'own_data.md').read_text().splitlines():
        if line.strip().startswith('```'): inside = not inside; continue
        if inside: code.append(line)
    return [c for c in '\n'.join(code).replace('\\\n', ' ').splitlines() if c.startswith('ctxseg ')]


def run(cmd: str, tmp: Path, extra=()) -> int:
    args = cmd.split()[1:]
    args = [a.replace('my_data/', f'{tmp}/my_data/').replace('data/my_data', f'{tmp}/data/my_data')
             .replace('runs/my_data_aspp', f'{tmp}/runs/my_data_aspp') for a in args]
    return main(args + list(extra))


def test_the_page_commands_prepare_train_and_evaluate(tmp_path):
    folder(tmp_path / 'my_data')
    cmds = page_commands()
    assert [c.split()[1] for c in cmds] == ['prepare', 'train', 'eval'], cmds
    assert run(cmds[0], tmp_path) == 0
    m = json.loads((tmp_path / 'data' / 'my_data' / 'manifest.json').read_text())
    assert m['dataset'] == 'folder' and m['classes'] == CLASSES and sum(m['splits'].values()) == 10
    # the page's training command, its schedule cut to a few iterations (and its --set list extended)
    train = cmds[1].split(' --out ')
    assert run(train[0] + ' train.iters=3 train.log_interval=1 train.ckpt_interval=3 train.eval_interval=0 --no-progress --out '
               + train[1], tmp_path) == 0
    out = tmp_path / 'runs' / 'my_data_aspp'
    met = json.loads((out / 'metrics.json').read_text())
    assert met['classes'] == CLASSES and len(met['IoU']) == 3 and met['dataset'] == 'folder'
    assert run(cmds[2], tmp_path) == 0


@pytest.mark.parametrize('spoil, says', [
    (lambda r: (r / 'labels' / '0003.png').unlink(), '1 image(s) without a label'),
    (lambda r: Image.fromarray(np.zeros((41, 56), np.uint8)).save(r / 'labels' / '0002.png'), 'has shape (41, 56), its image'),
    (lambda r: Image.fromarray(np.full((40, 56), 9, np.uint8)).save(r / 'labels' / '0001.png'), 'contains ids [9]'),
    (lambda r: (r / 'classes.json').write_text('{"classes": ["a", "a"]}'), 'distinct'),
    (lambda r: Image.fromarray(np.zeros((40, 56, 3), np.uint8)).save(r / 'labels' / '0004.png'), 'single-channel'),
])
def test_a_bad_folder_fails_with_one_line_and_writes_nothing(tmp_path, capsys, spoil, says):
    src = folder(tmp_path / 'my_data'); spoil(src)
    dst = tmp_path / 'out' / 'prepared'
    rc = main(['prepare', 'folder', '--images', str(src / 'images'), '--labels', str(src / 'labels'), '--dst', str(dst)])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and says in err[0], err
    assert not (tmp_path / 'out').exists()


def test_the_page_class_file_example_is_accepted(tmp_path):
    from ctxseg.datasets import read_folder_classes
    text = (ROOT / 'book' / 'own_data.md').read_text()
    block = text.split('```json', 1)[1].split('```', 1)[0]
    (tmp_path / 'classes.json').write_text(block)
    info, ignore = read_folder_classes(tmp_path / 'classes.json')
    assert info.classes == ('background', 'crack', 'stain') and ignore == 255 and len(info.palette) == 3
