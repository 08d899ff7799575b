"""The import order of ``src/conv3t``: every import, function-local ones included, goes down the layers.

Each module belongs to a unit: its subpackage (``conv3t.explain.report.build`` -> ``explain``) or, for a
top-level module, the module itself (``conv3t.files`` -> ``files``; the package's ``__init__`` is ``conv3t``).
Units are ordered in :data:`LAYERS`, bottom first. A unit may import its own modules and those of units in lower
layers only: an import of a unit in the same layer or a higher one fails, and so does any cycle between units
(found separately, so the message shows the whole loop). :data:`NEVER` lists pairs that must not import each
other in either direction, whatever the layers say.

Imports are read with :mod:`ast` from the source, so imports inside functions and under ``TYPE_CHECKING``
count as well; ``importlib.import_module`` calls (the CLI's dispatcher) are not imports and are not seen.
"""

from __future__ import annotations

import ast
import itertools
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "conv3t"

#: Bottom first. ``nn``, ``files``, ``runtime`` (device, memory sizes, weight hashes) and ``proportions``
#: (binomial tails and intervals) import nothing else of the package; ``exported`` (the weights format, with the
#: preprocessing of ``data`` it carries) is below ``train``, which writes it; ``readout`` reads the temporal
#: parameters for both ``verify`` and ``explain``; the commands sit on top, the CLI dispatches to them,
#: ``__main__`` runs the CLI.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("files", "nn", "runtime", "lazy", "proportions"),
    ("models", "fold"),
    ("conv3t",),  # the package's __init__: re-exports Conv3T and fold
    ("data",),
    ("exported",),
    ("train",),
    ("readout",),
    ("verify",),
    ("explain",),
    ("commands",),
    ("cli",),
    ("__main__",),
)

#: Pairs of units that never import each other (the trainer and the explainer know nothing of each other).
NEVER: tuple[tuple[str, str], ...] = (("train", "explain"),)


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    importer: str  # the importing module's unit
    target: str  # the imported unit
    statement: str  # the import as written, for messages


def _module_name(path: Path, root: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts])


def _unit(module: str, package: str, root: Path) -> str | None:
    """The unit of an absolute module name inside ``package`` (None outside it)."""
    parts = module.split(".")
    if parts[0] != package:
        return None
    if len(parts) == 1:
        return package
    return parts[1]


def _is_submodule(root: Path, name: str) -> bool:
    return (root / f"{name}.py").is_file() or (root / name / "__init__.py").is_file()


def collect_imports(root: Path, package: str) -> list[Import]:
    """Every import inside ``package`` (source folder ``root``) that names a unit of it, with file and line."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root, package)
        importer = _unit(module, package, root)
        is_init = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for target in _targets(node, module, is_init, root, package):
                unit = _unit(target, package, root)
                if unit is not None and importer is not None:
                    found.append(Import(path, node.lineno, importer, unit, ast.unparse(node)))
    return found


def _targets(node: ast.AST, module: str, is_init: bool, root: Path, package: str) -> Iterable[str]:
    """The absolute module names an import statement loads (``from pkg import sub`` loads ``pkg.sub``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolve against the importing module's package
            base = module.split(".") if is_init else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            name = ".".join(base + ([node.module] if node.module else []))
        else:
            name = node.module or ""
        if name == package:  # ``from conv3t import files`` imports the unit files, ``__version__`` the root
            for alias in node.names:
                yield f"{package}.{alias.name}" if _is_submodule(root, alias.name) else package
        else:
            yield name


def layer_violations(
    imports: Sequence[Import], layers: Sequence[Sequence[str]], never: Sequence[tuple[str, str]] = ()
) -> list[str]:
    """One message per import that goes sideways or up, or joins a pair of :data:`NEVER`."""
    rank = {unit: i for i, group in enumerate(layers) for unit in group}
    forbidden = {frozenset(pair) for pair in never}
    problems = []
    for imp in imports:
        if imp.importer == imp.target:
            continue
        where = f"{imp.file}:{imp.line}: `{imp.statement}`"
        if imp.importer not in rank or imp.target not in rank:
            unknown = imp.importer if imp.importer not in rank else imp.target
            problems.append(f"{where}: unit {unknown!r} has no layer; add it to LAYERS in tests/test_imports.py")
        elif frozenset((imp.importer, imp.target)) in forbidden:
            problems.append(f"{where}: {imp.importer} must never import {imp.target}")
        elif rank[imp.target] >= rank[imp.importer]:
            how = "sideways (same layer)" if rank[imp.target] == rank[imp.importer] else "upward"
            problems.append(f"{where}: {imp.importer} imports {imp.target}, {how}; imports go down the layers")
    return problems


def find_cycles(imports: Sequence[Import]) -> list[str]:
    """Cycles in the graph of units (an edge per importing unit -> imported unit), each with its import sites."""
    edges: dict[str, dict[str, Import]] = defaultdict(dict)
    for imp in imports:
        if imp.importer != imp.target:
            edges[imp.importer].setdefault(imp.target, imp)
    cycles, seen = [], set()
    for start in sorted(edges):
        stack = [(start, [start])]
        while stack:
            node, path = stack.pop()
            for nxt in sorted(edges.get(node, {})):
                if nxt == start:
                    key = frozenset(path)
                    if key not in seen:
                        seen.add(key)
                        loop = [*path, start]
                        sites = "; ".join(
                            f"{edges[a][b].file}:{edges[a][b].line}: `{edges[a][b].statement}`"
                            for a, b in itertools.pairwise(loop)
                        )
                        cycles.append(f"import cycle {' -> '.join(loop)} ({sites})")
                elif nxt not in path and nxt > start:  # each cycle once, from its smallest unit
                    stack.append((nxt, [*path, nxt]))
    return cycles


# ------------------------------------------------------------------------------------------------ the package
def test_imports_of_conv3t_go_down_the_layers() -> None:
    imports = collect_imports(SRC, "conv3t")
    assert len(imports) > 100  # the parser sees the package (function-local imports included)
    problems = layer_violations(imports, LAYERS, NEVER)
    assert not problems, "\n".join(problems)


def test_conv3t_has_no_import_cycle_between_subpackages() -> None:
    cycles = find_cycles(collect_imports(SRC, "conv3t"))
    assert not cycles, "\n".join(cycles)


def test_nn_imports_nothing_else_of_the_package() -> None:
    outside = [i for i in collect_imports(SRC, "conv3t") if i.importer == "nn" and i.target != "nn"]
    assert not outside, "\n".join(f"{i.file}:{i.line}: `{i.statement}`" for i in outside)


def test_every_unit_has_a_layer() -> None:
    modules = {p.stem for p in SRC.glob("*.py")} | {p.name for p in SRC.iterdir() if (p / "__init__.py").is_file()}
    units = {"conv3t" if name == "__init__" else name for name in modules}
    placed = {u for group in LAYERS for u in group}
    assert units <= placed, f"no layer for {sorted(units - placed)}"


# ------------------------------------------------------------------------------------ the checker can fail
def _fake_package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fake"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


FAKE_LAYERS = (("low",), ("mid",), ("high",))


def test_checker_finds_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/core.py": "def f():\n    from fake.high import view  # hidden in a function\n    return view\n",
            "mid/__init__.py": "from fake.low.core import f\n",
            "high/__init__.py": "from .. import mid\n",  # relative, downward: fine
            "high/view.py": "import fake.mid\n",
        },
    )
    imports = collect_imports(root, "fake")
    problems = layer_violations(imports, FAKE_LAYERS)
    assert len(problems) == 1, problems
    assert f"{root / 'low' / 'core.py'}:2:" in problems[0]
    assert "`from fake.high import view`" in problems[0] and "upward" in problems[0]


def test_checker_finds_a_cycle_and_names_its_imports(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "from fake.mid import thing\n",
            "mid/__init__.py": "thing = 1\n\ndef g():\n    from fake.high import x\n",
            "high/__init__.py": "from fake import low\nx = 1\n",
        },
    )
    cycles = find_cycles(collect_imports(root, "fake"))
    assert len(cycles) == 1
    assert cycles[0].startswith("import cycle high -> low -> mid -> high")
    for site in ("low/__init__.py:1", "mid/__init__.py:4", "high/__init__.py:1"):
        assert site in cycles[0].replace(str(root) + "/", "")


def test_checker_flags_sideways_imports_never_pairs_and_unknown_units(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "import fake.b\n",
            "b.py": "",
            "high/__init__.py": "from fake.low import y\n",
            "low/__init__.py": "y = 1\n",
            "extra/__init__.py": "import fake.low\n",
        },
    )
    problems = layer_violations(
        collect_imports(root, "fake"),
        (("low",), ("a", "b"), ("high",)),
        never=(("high", "low"),),
    )
    text = "\n".join(problems)
    assert "a imports b, sideways" in text
    assert "high must never import low" in text
    assert "unit 'extra' has no layer" in text


@pytest.mark.parametrize("statement", ["from fake import sub", "import fake.sub.deep", "from fake.sub import deep"])
def test_checker_maps_import_forms_to_units(tmp_path: Path, statement: str) -> None:
    root = _fake_package(tmp_path, {"__init__.py": "", "sub/__init__.py": "", "sub/deep.py": "", "top.py": statement})
    [imp] = collect_imports(root, "fake")
    assert (imp.importer, imp.target, imp.line) == ("top", "sub", 1)


# ------------------------------------------------------------------------------------- between files
def _module_of(name: str, root: Path, package: str) -> str | None:
    """The module file an absolute import name loads: ``name`` itself when it is a module of ``package``, else
    its longest prefix that is (``from pkg.mod import function`` loads ``pkg.mod``)."""
    parts = name.split(".")
    if parts[0] != package:
        return None
    while parts:
        rel = Path(*parts[1:]) if len(parts) > 1 else Path()
        if (root / rel).with_suffix(".py").is_file() if len(parts) > 1 else False:
            return ".".join(parts)
        if (root / rel / "__init__.py").is_file():
            return ".".join(parts)
        parts = parts[:-1]
    return None


def module_edges(root: Path, package: str) -> dict[str, dict[str, str]]:
    """importing module -> imported module -> one import site, for every import in every file (inside functions
    and under ``TYPE_CHECKING`` too); ``from pkg import sub`` names the module ``pkg.sub``."""
    edges: dict[str, dict[str, str]] = defaultdict(dict)
    for path in sorted(root.rglob("*.py")):
        module = _module_name(path, root, package)
        is_init = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            for name in _loaded(node, module, is_init, root, package):
                target = _module_of(name, root, package)
                if target is not None and target != module:
                    edges[module].setdefault(target, f"{path}:{node.lineno}: `{ast.unparse(node)}`")
    return edges


def _loaded(node: ast.AST, module: str, is_init: bool, root: Path, package: str) -> Iterable[str]:
    """The modules an import statement loads: ``from pkg import sub`` the module ``pkg.sub`` when there is one,
    else ``pkg`` (a name defined in it)."""
    for base in _targets(node, module, is_init, root, package):
        if not isinstance(node, ast.ImportFrom):
            yield base
            continue
        for alias in node.names:
            candidate = f"{base}.{alias.name}"
            yield candidate if _module_of(candidate, root, package) == candidate else base


def file_cycles(edges: dict[str, dict[str, str]]) -> list[str]:
    """Each strongly connected set of more than one module (Tarjan), with one loop through it and its sites."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, {})):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_describe_loop(group, edges) for group in found]


def _describe_loop(group: list[str], edges: dict[str, dict[str, str]]) -> str:
    """One loop through ``group`` from its first module (breadth-first back to the start), with import sites."""
    start, members = group[0], set(group)
    parents: dict[str, str] = {}
    queue = [start]
    while queue:
        v = queue.pop(0)
        for w in sorted(edges.get(v, {})):
            if w == start:
                loop = [start]
                while v != start:
                    loop.insert(1, v)
                    v = parents[v]
                loop.append(start)
                sites = "; ".join(edges[a][b] for a, b in itertools.pairwise(loop))
                return f"{len(group)} files import each other: {' -> '.join(loop)} ({sites})"
            if w in members and w not in parents:
                parents[w] = v
                queue.append(w)
    return f"{len(group)} files import each other: {', '.join(group)}"


def test_no_two_files_of_conv3t_import_each_other() -> None:
    edges = module_edges(SRC, "conv3t")
    cycles = file_cycles(edges)
    assert not cycles, "\n".join(cycles)


#: The units inside ``explain``, bottom first: the methods (every module directly in ``explain/``) and the
#: faithfulness checks below the report's analysis, which is below what is made of it (the saved analysis, the
#: data files and the page), the registry of sections, the builders and the package's entry points.
EXPLAIN_LAYERS: tuple[tuple[str, ...], ...] = (
    ("methods",),
    ("faithfulness",),
    ("report.options", "report.progress"),
    ("report.analysis",),
    ("report.saved",),
    ("report.artifacts", "report.render"),
    ("report.registry",),
    ("report.build", "report.compare"),
    ("report", "explain"),
)


def explain_unit(module: str) -> str | None:
    """The unit inside ``explain`` of a module of ``conv3t.explain`` (None outside it)."""
    parts = module.split(".")
    if parts[:2] != ["conv3t", "explain"]:
        return None
    if len(parts) == 2:
        return "explain"
    if parts[2] == "faithfulness":
        return "faithfulness"
    if parts[2] != "report":
        return "methods"
    return "report" if len(parts) == 3 else f"report.{parts[3]}"


def test_explain_goes_one_way_methods_analysis_artifacts_render() -> None:
    rank = {unit: i for i, group in enumerate(EXPLAIN_LAYERS) for unit in group}
    problems = []
    for importer, targets in module_edges(SRC, "conv3t").items():
        a = explain_unit(importer)
        for target, site in targets.items():
            b = explain_unit(target)
            if a is None or b is None or a == b or a in ("report", "explain"):  # the packages' lazy entry points
                continue
            if a not in rank or b not in rank:
                problems.append(f"{site}: unit {a if a not in rank else b!r} has no place in EXPLAIN_LAYERS")
            elif rank[b] >= rank[a]:
                problems.append(f"{site}: {a} imports {b}; inside explain imports go down EXPLAIN_LAYERS")
    assert not problems, "\n".join(problems)


def test_the_file_check_finds_a_circle_through_a_type_checking_import(tmp_path: Path) -> None:
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from fake.b import g\n",
            "b.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from fake.c import C\ng = 1\n",
            "c.py": "def f():\n    from fake import a\n",
            "d.py": "import fake.a\n",
        },
    )
    [cycle] = file_cycles(module_edges(root, "fake"))
    assert cycle.startswith("3 files import each other: fake.a -> fake.b -> fake.c -> fake.a")
    assert "b.py:3" in cycle and "c.py:2" in cycle


#: The modules inside ``train``, bottom first: the typed schema and the leaf helpers (cache, checkpoint files,
#: compile settings, trainer options); the config's validation; what is built from a valid config (optimiser,
#: early stopping, the run folder's artifacts); the LightningModule and the requeue handler; evaluation and the
#: run driver; the dry run (which drives the run without training); the package's entry point.
TRAIN_LAYERS: tuple[tuple[str, ...], ...] = (
    ("schema", "cache", "checkpoint", "compiling", "trainer_options"),
    ("config",),
    ("optim", "stopping", "artifacts"),
    ("module", "requeue"),
    ("evaluate", "run"),
    ("dry_run",),
    ("train",),
)


def inner_unit(module: str, package: str) -> str | None:
    """The module's name inside ``package`` (``conv3t.train.module`` -> ``module``; the package itself ->
    its last name); None outside it."""
    prefix = package.split(".")
    parts = module.split(".")
    if parts[: len(prefix)] != prefix:
        return None
    return parts[len(prefix)] if len(parts) > len(prefix) else prefix[-1]


def inner_problems(edges: dict[str, dict[str, str]], package: str, layers: Sequence[Sequence[str]]) -> list[str]:
    """Imports between modules of ``package`` that go sideways or up ``layers`` (any loop among them does)."""
    rank = {unit: i for i, group in enumerate(layers) for unit in group}
    problems = []
    for importer, targets in edges.items():
        a = inner_unit(importer, package)
        for target, site in targets.items():
            b = inner_unit(target, package)
            if a is None or b is None or a == b:
                continue
            if a not in rank or b not in rank:
                problems.append(f"{site}: module {a if a not in rank else b!r} has no place in the layers of {package}")
            elif rank[b] >= rank[a]:
                problems.append(f"{site}: {a} imports {b}; inside {package} imports go down the layers")
    return problems


def test_train_goes_one_way_schema_config_module_run() -> None:
    problems = inner_problems(module_edges(SRC, "conv3t"), "conv3t.train", TRAIN_LAYERS)
    assert not problems, "\n".join(problems)


def test_every_module_of_train_has_a_layer() -> None:
    modules = {p.stem for p in (SRC / "train").glob("*.py") if p.stem != "__init__"}
    placed = {u for group in TRAIN_LAYERS for u in group}
    assert modules <= placed, f"no layer in TRAIN_LAYERS for {sorted(modules - placed)}"


def test_the_train_check_fails_a_planted_loop(tmp_path: Path) -> None:
    """A loop inside train (config <-> a module built on it, as config <-> protocol_checks once was) fails, at
    the import that goes up; downward imports and the package's entry point pass."""
    root = _fake_package(
        tmp_path,
        {
            "__init__.py": "",
            "train/__init__.py": "from fake.train.run import fit\n",
            "train/schema.py": "",
            "train/config.py": "from fake.train.schema import X\n\ndef check():\n    from fake.train import module\n",
            "train/module.py": "from fake.train.config import check\n",
            "train/run.py": "from fake.train import module\n\ndef fit():\n    pass\n",
        },
    )
    edges = module_edges(root, "fake")
    assert file_cycles(edges)  # the planted loop is a loop
    problems = inner_problems(edges, "fake.train", TRAIN_LAYERS)
    assert len(problems) == 1, problems
    assert "config.py:4:" in problems[0] and "config imports module" in problems[0]
