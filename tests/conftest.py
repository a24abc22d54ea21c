import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / '.venv' / 'bin'
os.environ.setdefault('HF_HUB_OFFLINE', '1'); os.environ.setdefault('HF_DATASETS_OFFLINE', '1')

@pytest.fixture
def ctxseg_cmd():
    "The installed console script (falls back to `python -m ctxseg.cli`)."
    exe = BIN / 'ctxseg'
    return [str(exe)] if exe.exists() else [sys.executable, '-m', 'ctxseg.cli']
