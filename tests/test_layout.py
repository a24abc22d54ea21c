"""The package's layout (CONTRIBUTING.md, "The module map"): no import circle among ctxseg's modules, and no module
importing from a layer below it in the map (a lower layer builds on the higher ones). Imports are read from the
source, lazy imports inside functions included."""
import ast
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'ctxseg'
LAYERS = {   # CONTRIBUTING.md's module map, top to bottom
    'foundations': ['configs', 'inputs', 'losses', 'metrics', 'provenance'],
    'presets': ['presets', 'presets.mcibi', 'presets.region_contrast', 'presets.pixel_contrast', 'presets.gald',
                'presets.contextrast'],
    'data': ['synthetic', 'aerial', 'datasets', 'transforms', 'data'],
    'models': ['models', 'models.backbones', 'models.heads', 'methods', 'methods.common', 'methods.pixel_contrast',
               'methods.region_contrast', 'methods.contextrast', 'methods.gald', 'methods.mcibi', 'models.segmentor'],
    'training': ['engine'],
    'harness': ['grids', 'protocol', 'notebooks', 'bench', 'convert', 'recipes', 'rehearse', 'chapter'],
    'front': ['api', 'cli', 'runner', ''],
}

# The one import against the layers: `ctxseg.configs.get` and `.names` are the names the package's design contract gives
# the preset registry, which lives above (`ctxseg.presets`, since the papers' presets build on the configs); they
# import it inside the two functions and nothing else does.
CONTRACT_ALIASES = {('configs', 'presets')}

def _name(p: Path) -> str:
    parts = list(p.relative_to(PKG).with_suffix('').parts)
    return '.'.join(parts[:-1] if parts[-1] == '__init__' else parts)

def imports() -> dict[str, set[str]]:
    "{module: the ctxseg modules it imports} (names relative to the package; '' is the package itself)."
    out = {}
    for p in sorted(PKG.rglob('*.py')):
        if p.name == '_modidx.py': continue
        m = _name(p); pkg = m if p.name == '__init__.py' else m.rpartition('.')[0]
        deps = set()
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.ImportFrom):
                if n.level: base = '.'.join([x for x in pkg.split('.') if x][:max(0, len([x for x in pkg.split('.') if x]) - n.level + 1)] + ([n.module] if n.module else []))
                elif (n.module or '').startswith('ctxseg'): base = n.module[len('ctxseg.'):] if n.module != 'ctxseg' else ''
                else: continue
                for a in n.names:
                    sub = f'{base}.{a.name}'.strip('.')
                    path = PKG / sub.replace('.', '/')
                    deps.add(sub if (path.with_suffix('.py').exists() or (path / '__init__.py').exists()) else base)
            elif isinstance(n, ast.Import):
                deps |= {a.name[len('ctxseg.'):] for a in n.names if a.name.startswith('ctxseg.')}
        out[m] = deps - {m}
    return out

def layered_imports() -> dict[str, set[str]]:
    "`imports()` without the contract's aliases."
    return {m: {d for d in ds if (m, d) not in CONTRACT_ALIASES} for m, ds in imports().items()}

def test_every_module_is_on_the_map():
    placed = {m for ms in LAYERS.values() for m in ms}
    assert set(imports()) - placed == set(), 'add the new module to CONTRIBUTING.md and LAYERS'

def test_no_import_circle():
    g = layered_imports()
    def reach(a):
        seen, todo = set(), [a]
        while todo:
            for b in g.get(todo.pop(), ()):
                if b not in seen: seen.add(b); todo.append(b)
        return seen
    circles = sorted({tuple(sorted((a, b))) for a in g for b in g[a] if a in reach(b)})
    assert circles == []

def test_no_module_imports_from_a_lower_layer():
    rank = {m: i for i, ms in enumerate(LAYERS.values()) for m in ms}
    bad = {(a, b) for a, ds in layered_imports().items() for b in ds if b in rank and rank[b] > rank[a]}
    assert bad == set()

def test_the_aliases_are_the_only_exception():
    "Each alias is an import that exists (else it goes from the list), and the only one that breaks the layers."
    assert CONTRACT_ALIASES <= {(a, b) for a, ds in imports().items() for b in ds}

def test_the_check_sees_a_circle(tmp_path, monkeypatch):
    "The graph reader finds relative and absolute, top-level and lazy imports (so the tests above can fail)."
    pkg = tmp_path / 'ctxseg'; (pkg / 'sub').mkdir(parents=True)
    (pkg / '__init__.py').write_text(''); (pkg / 'sub' / '__init__.py').write_text('')
    (pkg / 'a.py').write_text('from . import b\n')
    (pkg / 'b.py').write_text('def f():\n    from ctxseg.sub import c\n')
    (pkg / 'sub' / 'c.py').write_text('from ..a import x\n')
    monkeypatch.setattr(__import__(__name__), 'PKG', pkg)
    g = imports()
    assert g['a'] == {'b'} and g['b'] == {'sub.c'} and g['sub.c'] == {'a'}
    with pytest.raises(AssertionError): test_no_import_circle()
