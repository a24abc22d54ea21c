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
