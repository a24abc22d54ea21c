"""Build the ctxseg book (Jupyter Book 1) offline: `make book`, or `.venv/bin/python tools/build_book.py`.

0. Writes the landing page's status matrix (tools/status_matrix.py) to book/_generated/status.md, and the page
   "Which method, when?" (tools/which_method.py) to book/_generated/which_method.md.
1. Copies MathJax 3 (pip package `django-static-mathjax`, import name `mathjax`) to book/_mathjax/mathjax/
   (git-ignored), which book/_config.yml serves as the site's own static files: no CDN.
2. Runs, from the repository root,
       jupyter-book build . --config book/_config.yml --toc book/_toc.yml --path-output book
                            --all -W --keep-going [-n]
   The notebooks are read in place from nbs/; book/_ext/nbdev_cells.py turns their nbdev directives into
   cell tags in memory (nothing is written to nbs/). `--all` re-reads every page, so every warning is
   reported on every build; execution is cached (book/_build/.jupyter_cache), keyed on each notebook's code
   and on the library's source, so an unchanged notebook is not run again.
3. Exits non-zero when the build fails or warns (missing figure, broken cross-reference or citation,
   notebook execution error, ...), and prints where the notebook error reports are.

The book is in book/_build/html/ (open book/_build/html/index.html).
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / 'book' / '_build' / 'html'      # where the book is written (for a repository at ROOT)


def mathjax_source() -> Path:
    "The MathJax 3 `es5/` folder shipped by the `django-static-mathjax` package."
    try:
        import mathjax
    except ImportError:
        sys.exit("build_book: MathJax not installed: .venv/bin/pip install django-static-mathjax==3.2.2.1")
    src = Path(mathjax.__file__).parent / 'static' / 'mathjax'
    if not (src / 'es5' / 'tex-mml-chtml.js').is_file():
        sys.exit(f"build_book: {src}/es5/tex-mml-chtml.js not found (unexpected django-static-mathjax layout)")
    return src


def prepare_mathjax(root: Path = ROOT) -> Path:
    "Copy MathJax to book/_mathjax/mathjax/ (git-ignored) unless the same version is already there."
    src, dst = mathjax_source(), root / 'book' / '_mathjax' / 'mathjax'
    stamp = dst / '.source'
    key = f"{src}\n{(src / 'package.json').stat().st_mtime_ns if (src / 'package.json').exists() else ''}"
    if stamp.is_file() and stamp.read_text() == key and (dst / 'tex-mml-chtml.js').is_file():
        return dst
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src / 'es5', dst)
    for f in ('LICENSE', 'package.json'):
        if (src / f).is_file(): shutil.copy2(src / f, dst / f)
    stamp.write_text(key)
    return dst


def write_status(root: Path) -> Path:
    "The landing page's status matrix (tools/status_matrix.py), regenerated from the repository before every build."
    import importlib.util
    spec = importlib.util.spec_from_file_location('status_matrix', Path(__file__).with_name('status_matrix.py'))
    mod = importlib.util.module_from_spec(spec); spec.loader.exec_module(mod)
    spec = importlib.util.spec_from_file_location('which_method', Path(__file__).with_name('which_method.py'))
    which = importlib.util.module_from_spec(spec); spec.loader.exec_module(which)
    which.write(root)                                   # the page "Which method, when?"
    return mod.write(root)


def build(root: Path = ROOT, clean: bool = False, nitpicky: bool = True, quiet: bool = False) -> int:
    """Build the book of the repository at `root` into root/book/_build/html/; return the exit status
    (0 = built without a warning and every notebook executed)."""
    t0, root = time.time(), Path(root).resolve()
    html = root / 'book' / '_build' / 'html'
    if clean: shutil.rmtree(root / 'book' / '_build', ignore_errors=True)
    prepare_mathjax(root)
    write_status(root)
    jb = Path(sys.executable).parent / 'jupyter-book'
    cmd = [str(jb) if jb.exists() else 'jupyter-book', 'build', '.', '--config', 'book/_config.yml',
           '--toc', 'book/_toc.yml', '--path-output', 'book', '--all', '-W', '--keep-going']
    if nitpicky: cmd.append('-n')
    if quiet: cmd.append('-q')
    env = dict(os.environ)
    # Notebook kernels inherit the environment: MPLBACKEND=Agg would make plt.show() emit no figure.
    env.pop('MPLBACKEND', None)
    env.setdefault('HF_HUB_OFFLINE', '1'); env.setdefault('HF_DATASETS_OFFLINE', '1')
    env.setdefault('PYDEVD_DISABLE_FILE_VALIDATION', '1')   # silences a debugger warning in kernels
    # tqdm.auto (imported by timm/huggingface_hub) warns in every kernel that ipywidgets is missing; the
    # widgets would need JavaScript from a CDN anyway, so the text bars are what the book wants: no noise.
    env['PYTHONWARNINGS'] = ','.join(w for w in [env.get('PYTHONWARNINGS', ''), 'ignore:IProgress not found'] if w)
    # kernels run in nbs/; `import ctxseg` must find this checkout's library even without `pip install -e .`
    env['PYTHONPATH'] = os.pathsep.join([str(root)] + [p for p in env.get('PYTHONPATH', '').split(os.pathsep) if p])
    print('build_book:', ' '.join(cmd), flush=True)
    rc = subprocess.run(cmd, cwd=root, env=env, stdin=subprocess.DEVNULL).returncode
    reports = sorted((html / 'reports').rglob('*.err.log')) if (html / 'reports').is_dir() else []
    # a report is left for each notebook that failed to execute in *this* build
    reports = [r for r in reports if r.stat().st_mtime >= t0]
    for r in reports: print(f'build_book: notebook execution failed, see {r.relative_to(root)}', file=sys.stderr)
    if rc == 0 and reports: rc = 1
    status = 'ok' if rc == 0 else f'FAILED (exit {rc})'
    print(f'build_book: {status} in {time.time() - t0:.0f} s -> {(html / "index.html").relative_to(root)}',
          flush=True)
    return rc


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--clean', action='store_true', help='remove book/_build first (also the execution cache)')
    ap.add_argument('--no-nitpicky', action='store_true', help='do not warn about every unresolved reference')
    ap.add_argument('-q', '--quiet', action='store_true', help='only print warnings and errors')
    ap.add_argument('--root', type=Path, default=ROOT, help='repository root (default: this repository)')
    a = ap.parse_args(argv)
    return build(root=a.root, clean=a.clean, nitpicky=not a.no_nitpicky, quiet=a.quiet)


if __name__ == '__main__':
    sys.exit(main())
