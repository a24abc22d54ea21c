import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / '.venv' / 'bin'
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1')

def run_torchrun(*args, timeout: int = 600):
    "`python -m torch.distributed.run --standalone --nproc_per_node=2 *args` with one thread per rank and no stdin."
    import subprocess
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    cmd = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2', *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)

@pytest.fixture
def torchrun():
    "Two CPU ranks under torchrun: `torchrun(script_or_-m, *args)` → CompletedProcess."
    return run_torchrun

@pytest.fixture
def ctxseg_cmd():
    "The installed console script (falls back to `python -m ctxseg.cli`)."
    exe = BIN / 'ctxseg'
    return [str(exe)] if exe.exists() else [sys.executable, '-m', 'ctxseg.cli']


def _resume_pair(cfg, tmp_path):
    """Train `cfg` straight through, and again stopped after 3 iterations and resumed: `(straight, split, mid)`, the
    final model state of each and the split run's state at the stop (read before it resumes)."""
    import torch
    from ctxseg import configs as C
    from ctxseg import presets as P
    from ctxseg.engine import train, load_checkpoint
    train(cfg, tmp_path / 'straight', progress=False)
    train(C.apply_overrides(cfg, ['train.stop_after=3']), tmp_path / 'split', progress=False)
    mid = load_checkpoint(tmp_path / 'split' / 'checkpoint.pt')['model']
    train(cfg, tmp_path / 'split', resume=True, progress=False)
    torch.use_deterministic_algorithms(False)
    a = load_checkpoint(tmp_path / 'straight' / 'checkpoint.pt')['model']
    b = load_checkpoint(tmp_path / 'split' / 'checkpoint.pt')['model']
    return a, b, mid

@pytest.fixture
def resume_pair():
    "`resume_pair(cfg, tmp_path)` → (straight, split, mid) model states: for the exact-resume tests of every method."
    return _resume_pair

def _baseline_inference(preset: str, base: str = 'smoke', num_classes: int = 5):
    """A loss method's preset and its baseline with the same trunk and head weights, in eval mode, on one batch:
    `(flops, base_flops, logits, base_logits)`."""
    import torch
    from ctxseg import presets as P
    from ctxseg.bench import inference_flops
    from ctxseg.models.segmentor import build_model
    torch.manual_seed(0)
    ours = build_model(P.get(preset), num_classes=num_classes).eval()
    ref = build_model(P.get(base), num_classes=num_classes).eval()
    ref.load_state_dict({k: v for k, v in ours.state_dict().items() if not k.startswith('method.')}, strict=True)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(): lo, lb = ours(x).logits, ref(x).logits
    return inference_flops(ours, x), inference_flops(ref, x), lo, lb

@pytest.fixture
def baseline_inference():
    "`baseline_inference(preset)` → (flops, baseline flops, logits, baseline logits): a loss method must change none."
    return _baseline_inference


# `slow`: what builds the book, drives Chromium or papermill, starts torchrun or the `ctxseg` console script in a
# fresh process, rehearses, or builds the authors' full-size networks (test_convert). `make quicktest` runs the rest
# (`pytest -m "not slow"`, about a minute on 2 cores); `make test` and CI run everything. A test may also say
# `@pytest.mark.slow` itself.
SLOW_MODULES = {'test_book', 'test_notebooks', 'test_rehearse', 'test_gpu_suite', 'test_convert'}
SLOW_FIXTURES = {'torchrun', 'ctxseg_cmd'}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (item.module.__name__.rsplit('.', 1)[-1] in SLOW_MODULES
                or SLOW_FIXTURES & set(getattr(item, 'fixturenames', ()))):
            item.add_marker(pytest.mark.slow)
