"""Render nbdev notebooks sensibly in Jupyter Book 1, without touching `nbs/`.

Jupyter Book (myst-nb) knows nothing about nbdev's `#|` directives: it would execute `#| eval: false`
cells, show `#| hide` cells, and print the directive lines themselves. This module is a myst-nb
*notebook reader* (registered for `.ipynb` through `nb_custom_formats` in `book/_config.yml`): every
notebook the book reads passes through `read_nbdev_notebook`, which translates the directives into the
cell tags myst-nb and nbclient understand, **in memory**. The committed notebooks stay exactly as they
are (CI checks that they are nbdev-clean), and the book executes the very cells `nbdev_test` executes.

| nbdev (cell)                                   | book                                            |
| ---------------------------------------------- | ----------------------------------------------- |
| `#| hide`, `#| include: false`                 | `remove-cell` (runs, not shown)                 |
| `#| eval: false`                              | `skip-execution` (shown, not run)               |
| a test flag from settings.ini (`#| notest`, …) | `skip-execution`, as `nbdev_test` skips it      |
| a cell calling `nbdev_export(`                 | `skip-execution` (never regenerate ctxseg/)     |
| `#| echo: false`                              | `remove-input`                                  |
| `#| output: false`                            | `remove-output`                                 |
| `#| export`, `#| exports`, `#| exporti`        | `nbdev-export` (a small "exported" badge, CSS)  |
| `#| default_exp m`                            | a one-line note "… exported as `ctxseg.m`"      |
| frontmatter `skip_exec: true`                  | the notebook is rendered without executing it   |
| `#| fig-cap: text`, `#| label: fig-x`          | the cell's figure numbered, captioned, linkable |
| `#| fig-alt: text`                             | the figure's alt text (default: its caption)    |

The figure directives are Quarto's, which nbdev's own docs render the same way. A captioned cell shows
one figure: every rich output of the cell goes into the captioned figure.

The `#|` directive lines themselves are stripped from the rendered source (as nbdev's own docs do);
they are comments, so execution is unchanged. A notebook without kernel metadata (jupytext writes
none) gets the `python3` kernel and Python highlighting. A hash of the library's source goes into the
first code cell's metadata, which the execution cache keys on: when any module changes, every notebook
runs again instead of showing outputs computed with the old code.
"""
from __future__ import annotations

import re

import nbformat

try:  # nbdev's own parsers, so the book reads directives exactly as nbdev_export / nbdev_test do
    from nbdev.process import extract_directives, first_code_ln
    from nbdev.frontmatter import _fm2dict, _md2dict
except ImportError as e:  # pragma: no cover - nbdev is a hard requirement of the project
    raise ImportError(f"book/_ext/nbdev_cells.py needs nbdev (pip install -r requirements-dev.txt): {e}")

__all__ = ['read_nbdev_notebook', 'nbdev_tags', 'figure_options', 'skip_flags', 'library_hash']

_DIRECTIVE = re.compile(r'^\s*#\s*\|')
_FM_LIST_ITEM = re.compile(r'^-\s+(\S.*:.*\S)\s*$')   # nbdev's "- key: value" frontmatter lines
_EXPORTS = {'export', 'exports', 'exporti'}
_DEFAULT_FLAGS = ('notest', 'slow')


def _config(key: str, default: str) -> str:
    "A value from the project's settings.ini (found from the working directory), or `default`."
    try:
        from nbdev.config import get_config
        return get_config().get(key, default) or default
    except Exception:
        return default


def skip_flags() -> tuple[str, ...]:
    "The `tst_flags` of settings.ini (cells `nbdev_test` skips), falling back to nbdev's usual ones."
    return tuple(_config('tst_flags', ' '.join(_DEFAULT_FLAGS)).split())


def library_hash() -> str:
    """A hash of the exported library's source (`lib_path/**/*.py`).

    The execution cache keys a notebook on its own code cells only, but a notebook's outputs also depend
    on the modules other notebooks export. Putting this hash into the notebook's (in-memory) metadata
    makes any change to the library re-execute the notebooks instead of showing stale outputs."""
    import hashlib
    from pathlib import Path
    try:
        from nbdev.config import get_config
        lib = Path(get_config().lib_path)
    except Exception:
        return ''
    h = hashlib.sha1()
    for p in sorted(lib.rglob('*.py')):
        if p.name == '_modidx.py': continue
        h.update(p.relative_to(lib).as_posix().encode()); h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _flag(directives: dict, key: str) -> str | None:
    "The (lower-cased) value of a `#| key: value` directive, or None."
    args = directives.get(key + ':')
    return args[0].lower() if args else None


def nbdev_tags(directives: dict, source: str, flags=_DEFAULT_FLAGS) -> list[str]:
    "The Jupyter Book cell tags that render a cell with these nbdev `directives` as nbdev's docs would."
    tags = []
    if 'hide' in directives or _flag(directives, 'include') == 'false': tags.append('remove-cell')
    if (_flag(directives, 'eval') == 'false' or set(flags) & directives.keys()
            or 'nbdev_export' + '(' in source): tags.append('skip-execution')
    if _flag(directives, 'echo') == 'false': tags.append('remove-input')
    if _flag(directives, 'output') == 'false': tags.append('remove-output')
    if _EXPORTS & directives.keys(): tags.append('nbdev-export')
    return tags


def _strip_directives(source: str) -> str:
    "The cell source without its leading `#|` directive lines."
    lines = source.splitlines(True)
    first = first_code_ln(lines)
    if first is None: first = len(lines)
    return ''.join(l for l in lines[:first] if not _DIRECTIVE.match(l) and l.strip()) + ''.join(lines[first:])


def _frontmatter(nb) -> dict:
    "nbdev's notebook frontmatter: a raw `---` YAML cell, or `- key: value` lines in the title cell."
    fm = {}
    for c in nb.cells:
        if c.cell_type == 'raw': fm.update(_fm2dict(c.source) or {})
        elif c.cell_type == 'markdown' and 'title' not in fm: fm.update(_md2dict(c.source) or {})
    return fm


_FIGURE = re.compile(r'^\s*#\s*\|\s*(fig-cap|fig-alt|label)\s*:\s*(.*?)\s*$')


def figure_options(source: str) -> tuple[dict, dict]:
    """myst-nb's (figure, image) options from a cell's Quarto figure directives, read from the raw lines
    (nbdev's directive parser splits values at colons and spaces, which a caption must keep)."""
    lines = source.splitlines()
    first = first_code_ln(lines)
    vals = dict(m.groups() for l in lines[:len(lines) if first is None else first] if (m := _FIGURE.match(l)))
    vals = {k: v[1:-1] if len(v) > 1 and v[0] == v[-1] and v[0] in '"\'' else v for k, v in vals.items()}
    if 'fig-cap' not in vals: return {}, {}
    fig = {'caption': vals['fig-cap']}
    if vals.get('label'): fig['name'] = vals['label']
    alt = vals.get('fig-alt') or re.sub(r'\{[a-z:]+\}`([^`]*)`|[`*$]', r'\1', vals['fig-cap'])
    return fig, {'alt': alt}


def _truthy(v) -> bool: return str(v).strip().lower() in ('1', 'true', 'yes', 'y', 'on')


def read_nbdev_notebook(text: str) -> nbformat.NotebookNode:
    "myst-nb reader for `.ipynb`: parse the notebook and translate nbdev directives into cell tags."
    nb = nbformat.reads(text, as_version=4)
    flags = skip_flags()
    fm = _frontmatter(nb)
    nb.metadata.setdefault('kernelspec', {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'})
    nb.metadata.setdefault('language_info', {'name': 'python', 'pygments_lexer': 'ipython3'})
    lib_hash, lib = library_hash(), _config('lib_name', 'ctxseg')
    if _truthy(fm.get('skip_exec', False)):
        nb.metadata.setdefault('mystnb', {})['execution_mode'] = 'off'
    cells, title_done = [], False
    for c in nb.cells:
        if c.cell_type == 'raw' and _fm2dict(c.source): continue          # YAML frontmatter: not content
        if c.cell_type == 'markdown' and not title_done and re.search(r'^#\s+\S', c.source, re.M):
            title_done = True                                               # drop "- key: value" frontmatter
            c.source = '\n'.join(l for l in c.source.splitlines() if not _FM_LIST_ITEM.match(l)).rstrip()
        if c.cell_type != 'code':
            cells.append(c); continue
        directives = extract_directives(c, remove=False)
        if not directives:
            cells.append(c); continue
        module = directives.get('default_exp')
        tags = [t for t in c.metadata.get('tags', [])]
        tags += [t for t in nbdev_tags(directives, c.source, flags) if t not in tags]
        fig, img = figure_options(c.source)
        if fig:
            c.metadata.setdefault('mystnb', {}).update(figure=fig, image=img)
        c.source = _strip_directives(c.source)
        if module:                                                          # `#| default_exp m`: say so
            cells.append(nbformat.v4.new_markdown_cell(
                f"*The code cells marked **exported** below make the module* `{lib}.{module[0]}`.",
                id=f"nbdev-default-exp-{len(cells)}"))
            if not c.source.strip(): continue
        if not c.source.strip(): tags.append('remove-cell')
        if tags: c.metadata['tags'] = tags
        cells.append(c)
    code = [c for c in cells if c.cell_type == 'code']
    if code and lib_hash: code[0].metadata['ctxseg_library'] = lib_hash   # part of the cache key
    nb.cells = cells
    return nb


def _register_authoryear_style() -> None:
    """A pybtex style `authoryear` whose bibliography labels read as the citations do ("Sung et al., 2024"), so a
    reader who follows "(Sung et al., 2024)" finds the same words in the list, not an alpha label like [SKA+24]."""
    from pybtex.plugin import register_plugin
    from pybtex.style.formatting.unsrt import Style as Unsrt
    from pybtex.style.labels import BaseLabelStyle

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            for e in sorted_entries:
                people = e.persons.get('author') or e.persons.get('editor') or []
                last = lambda p: ' '.join(p.prelast_names + p.last_names).replace('{', '').replace('}', '')
                who = (last(people[0]) + (' et al.' if len(people) > 2 else f' and {last(people[1])}' if len(people) == 2 else '')
                       if people else e.key)
                yield f"{who}, {e.fields.get('year', 'n.d.')}"

    class AuthorYear(Unsrt):
        default_label_style = AuthorYearLabels
        default_sorting_style = 'author_year_title'

    register_plugin('pybtex.style.formatting', 'authoryear', AuthorYear, force=True)


def setup(app):
    "A Sphinx extension: `local_extensions` puts this folder on sys.path for the reader; it also registers the bibliography style."
    _register_authoryear_style()
    return {'version': '1', 'parallel_read_safe': True, 'parallel_write_safe': True}
