"""benchmarks/gpu_suite.py in its CI mode (`--tiny --device cpu`): every section runs and writes its JSON, so the
suite is never broken when a GPU appears (issue 17). The numbers of the tiny mode mean nothing and are not checked.

Time: about half a minute (a dozen tiny networks, one training step each, and four iterations on a fixture)."""
from __future__ import annotations
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_gpu_suite_runs_in_its_cpu_mode(tmp_path):
    out = tmp_path / 'suite.json'
    env = {k: v for k, v in os.environ.items() if k != 'MPLBACKEND'}
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'gpu_suite.py'), '--tiny', '--device', 'cpu', '--out', str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=900, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    s = json.loads(out.read_text())
    assert s['tiny'] and s['device'] == 'cpu' and s['torch'] and s['machine']['hardware'] and s['git_commit']
    assert {(b['model'], b['precision']) for b in s['baselines']} >= {('R-50-D8', 'fp32'), ('R-101-D8', 'fp32')}
    for b in s['baselines']:
        assert b['train_gflops'] > 0 and b['train_step_ms'] > 0 and b['mfu'] is None     # no peak on CPU: n/a
    assert len(s["overheads"]) == 5                                    # pixel contrast, RegionContrast, MCIBI, GALD, Contextrast
    for o in s['overheads']:
        assert o['method_row']['size'] == o['baseline_row']['size'] and o['method_row']['batch'] == o['baseline_row']['batch']
    loss_methods = [o for o in s['overheads'] if any(k in o['method'] for k in ('pixcon', 'regcon', 'contextrast'))]
    assert loss_methods and all(o['extra_infer_gflops'] == 0 for o in loss_methods)      # nothing at inference
    hs = s['pixel_contrast_host_syncs']
    assert hs['cuda_sync_debug_train_step'] is None                                     # the debug mode: CUDA only
    assert hs['contrast'] > 0 and hs['counted_forward'] == 0, hs                        # anchors, and no host sync
    assert s['inference_full']['images_per_s'] > 0
    assert {(r['impl'], r['mode']) for r in s['ldv2']} == {(i, m) for i in ('lean', 'unfold') for m in ('fwd', 'fwd+bwd')}
    assert all(r['latency_ms_median'] > 0 for r in s['ldv2'])
    fr = s['fixture_run']
    assert [i for i, _ in fr['loss_curve']] == [1, 2, 3, 4] and all(l > 0 for _, l in fr['loss_curve'])
    assert fr['images_per_s_median'] > 0 and (tmp_path / fr['loss_png']).stat().st_size > 0


def test_the_gpu_suite_refuses_a_full_run_on_cpu():
    r = subprocess.run([sys.executable, str(ROOT / 'benchmarks' / 'gpu_suite.py'), '--device', 'cpu'], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and '--tiny' in r.stderr
