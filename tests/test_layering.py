"""labkit's imports follow the one documented direction, and no module imports itself back in a circle.

The rules are the table in ``labkit/__init__.py``'s docstring (the README's file tree repeats it); this
test reads that table, reads every ``labkit/**/*.py`` with ``ast`` — ``import``/``from`` statements at
any depth (a lazy import inside a function still ties the two modules), ``importlib.import_module("…")``
and ``__import__("…")`` calls with a literal name, and string constants that name a labkit module
(plug-in tables such as ``labkit.cli.COMMANDS``) — and fails with the file, the line and the rule
broken. Cycles are looked for among modules, whatever their layers.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import labkit

ROOT = Path(labkit.__file__).resolve().parent
README = ROOT.parent / "README.md"

# Edges known to break the rules, each with the issue that removes it. Keep this empty: remove a row as
# soon as its issue is done (the test fails on a row whose edge no longer exists).
KNOWN_EXCEPTIONS: dict[tuple[str, str], str] = {
}


@dataclass(frozen=True)
class Layer:
    name: str
    prefixes: tuple[str, ...]
    uses: frozenset[str]  # "*" = every layer


ROW = re.compile(r"^\s{4}(\w+)\s*=\s*([\w., ]+?)\s*\|\s*uses:\s*(.*?)\s*$")


def read_layers(doc: str) -> list[Layer]:
    """The table of ``labkit.__doc__``: ``    name = module, module | uses: layer layer`` rows."""
    layers = []
    for line in doc.splitlines():
        m = ROW.match(line)
        if m:
            uses = m.group(3).split("(")[0].replace(",", " ").split()
            layers.append(Layer(m.group(1), tuple(p.strip() for p in m.group(2).split(",")),
                                frozenset(u for u in uses if u != "-")))
    return layers


LAYERS = read_layers(labkit.__doc__ or "")


def layer_of(module: str) -> Layer | None:
    """The layer whose module prefix is the longest match of ``module`` (``labkit`` itself matches only
    the package's ``__init__``, so a new top-level module must be given a layer)."""
    best, length = None, -1
    for layer in LAYERS:
        for p in layer.prefixes:
            if (module == p or (p != "labkit" and module.startswith(p + "."))) and len(p) > length:
                best, length = layer, len(p)
    return best


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(base: str, name: str) -> str | None:
    """``base.name`` if that is a labkit module, else ``base`` if it is one, else None."""
    if f"{base}.{name}" in MODULES:
        return f"{base}.{name}"
    return base if base in MODULES else None


def _docstrings(tree: ast.Module) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def imports_of(module: str) -> list[tuple[str, int, str]]:
    """``(imported labkit module, line, how)`` for every import ``module`` makes, at any depth."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("labkit"):
                    target = alias.name
                    while target and target not in MODULES:
                        target = target.rpartition(".")[0]
                    if target:
                        found.append((target, node.lineno, f"import {alias.name}"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                base_parts = base_parts[: len(base_parts) - node.level + 1]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            if not base.startswith("labkit"):
                continue
            by_target: dict[str, list[str]] = {}
            for alias in node.names:
                target = _resolve(base, alias.name)
                if target:
                    by_target.setdefault(target, []).append(alias.name)
            for target, names in by_target.items():
                found.append((target, node.lineno, f"from {base} import {', '.join(names)}"))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            fn = node.func
            name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
            arg = node.args[0].value
            if name in ("import_module", "__import__") and isinstance(arg, str) and arg in MODULES:
                found.append((arg, node.lineno, f"{name}({arg!r})"))
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in MODULES
              and node.value.startswith("labkit.") and id(node) not in docs):
            found.append((node.value, node.lineno, f"the string {node.value!r} (a plug-in name)"))
    return [(t, line, how) for t, line, how in found if t != module]


def graph() -> dict[str, list[tuple[str, int, str]]]:
    return {m: imports_of(m) for m in MODULES}


def violations(edges: dict[str, list[tuple[str, int, str]]]) -> list[str]:
    out = []
    for module, targets in edges.items():
        src = layer_of(module)
        for target, line, how in targets:
            dst = layer_of(target)
            if src is None or dst is None or src is dst or "*" in src.uses or dst.name in src.uses:
                continue
            if (module, target) in KNOWN_EXCEPTIONS:
                continue
            path = MODULES[module].relative_to(ROOT.parent)
            allowed = ", ".join(sorted(src.uses)) or "nothing else"
            out.append(f"{path}:{line}: {how} — layer '{src.name}' may use {allowed}, not '{dst.name}' "
                       f"(rules: labkit/__init__.py)")
    return out


def _is_ancestor(package: str, module: str) -> bool:
    """``labkit.grading`` for ``labkit.grading.cases``: Python imports a package before any of its
    modules anyway, so a module reaching back to its own package's face is not a circle of design."""
    return module.startswith(package + ".")


def cycles(edges: dict[str, list[tuple[str, int, str]]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), as a sorted list."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []
    counter = [0]
    succ = {m: sorted({t for t, _, _ in ts if (m, t) not in KNOWN_EXCEPTIONS and not _is_ancestor(t, m)})
            for m, ts in edges.items()}

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in succ.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for m in sorted(succ):
        if m not in index:
            visit(m)
    return found


def describe_cycle(comp: list[str], edges) -> str:
    members = set(comp)
    ties = list(dict.fromkeys(f"{MODULES[m].relative_to(ROOT.parent)}:{line} imports {t}"
                              for m in comp for t, line, _ in edges[m]
                              if t in members and (m, t) not in KNOWN_EXCEPTIONS and not _is_ancestor(t, m)))
    return "cycle among " + " ↔ ".join(comp) + ":\n    " + "\n    ".join(ties)


def test_the_table_covers_every_module():
    assert LAYERS, "no layer table found in labkit/__init__.py's docstring (rows '    name = modules | uses: ...')"
    names = [layer.name for layer in LAYERS]
    for layer in LAYERS:
        unknown = layer.uses - set(names) - {"*"}
        assert not unknown, f"layer {layer.name} uses unknown layer(s) {sorted(unknown)}; known: {names}"
    homeless = [m for m in MODULES if layer_of(m) is None]
    assert not homeless, f"modules in no layer of labkit/__init__.py's table: {homeless}"


def test_the_readme_tree_states_the_same_rules():
    text = README.read_text(encoding="utf-8")
    readme = {layer.name: layer for layer in read_layers(text)}
    for layer in LAYERS:
        assert readme.get(layer.name) == layer, (
            f"README.md's layer table says {readme.get(layer.name)} for '{layer.name}', labkit/__init__.py says "
            f"{layer}: change both together")


def test_imports_follow_the_layers():
    bad = violations(graph())
    assert not bad, f"{len(bad)} import(s) against the documented direction:\n" + "\n".join(bad)


def test_no_import_cycles():
    edges = graph()
    found = cycles(edges)
    assert not found, "\n".join(describe_cycle(c, edges) for c in found)


def test_known_exceptions_still_exist():
    edges = graph()
    present = {(m, t) for m, ts in edges.items() for t, _, _ in ts}
    gone = [f"{edge}: {why}" for edge, why in KNOWN_EXCEPTIONS.items() if edge not in present]
    assert not gone, "these known exceptions are fixed; delete them from KNOWN_EXCEPTIONS:\n" + "\n".join(gone)


def test_the_checker_catches_what_it_must(tmp_path):
    """The checker itself can fail: an upward import, a string plug-in and a lazy cycle are all found."""
    fake = {
        "labkit.quant.x": [("labkit.nn.convert", 3, "from labkit.nn.convert import quantize_model")],
        "labkit.schemes": [("labkit.models.w8a8_schemes", 9, "the string 'labkit.models.w8a8_schemes' (a plug-in name)")],
        "labkit.nn.convert": [("labkit.schemes", 2, "from labkit.schemes import get_scheme")],
        "labkit.models.w8a8_schemes": [("labkit.nn.convert", 5, "from labkit.nn.convert import register_handler")],
    }
    saved = dict(MODULES)
    try:
        MODULES["labkit.quant.x"] = ROOT / "quant" / "x.py"
        bad = violations(fake)
        assert any("quant/x.py:3" in b and "layer 'quant'" in b and "not 'nn'" in b for b in bad), bad
        assert any("schemes.py:9" in b and "plug-in" in b and "not 'models'" in b for b in bad), bad
        found = cycles(fake)
        assert ["labkit.models.w8a8_schemes", "labkit.nn.convert", "labkit.schemes"] in found, found
    finally:
        MODULES.clear()
        MODULES.update(saved)


def test_the_readme_tree_names_every_module():
    """The README's "What is where" tree names every labkit module (a new module gets its line)."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index("## What is where"):]
    block = block[block.index("```") + 3:]
    block = block[: block.index("```")]
    named, stack = set(), []
    for line in block.splitlines():
        m = re.match(r"^( *)(\S+)", line)
        if not m:
            continue
        depth = len(m.group(1)) // 2
        stack = stack[:depth] + [m.group(2)]
        named.add("".join(stack))
    missing = [str(p.relative_to(ROOT.parent)) for p in sorted(ROOT.rglob("*.py"))
               if p.name != "__init__.py" and str(p.relative_to(ROOT.parent)) not in named]
    assert not missing, f"README.md's tree (## What is where) does not name: {missing}"
