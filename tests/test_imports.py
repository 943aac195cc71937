"""The package's shape: no import cycle anywhere in framecast/, and no model family named in the engine outside
families/ (and the presets, which are data naming the family that renders them)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

import framecast

ROOT = Path(framecast.__file__).resolve().parent
ENGINE = ROOT / "engine"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for path in ROOT.rglob("*.py")}


def imported(path: Path, modules: Mapping[str, Path]) -> set[str]:
    """Every framecast module ``path`` imports, wherever the import statement is (top level, inside a function,
    under TYPE_CHECKING): a module that imports another one back is a cycle even when it hides the import."""
    this = module_name(path)
    package = this if path.name == "__init__.py" else this.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                # ``from a import b``: the module a.b when there is one, else a name defined in a.
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {name for name in found if name in modules and name != this}


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` as a path that ends where it starts, or ``None``."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle_and_passes_a_tree():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_no_module_of_framecast_imports_a_module_that_imports_it_back():
    modules = all_modules()
    graph = {name: imported(path, modules) for name, path in modules.items()}
    assert "framecast.engine.engine" in graph["framecast.engine"]  # the graph sees function-level imports
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def words(text: str) -> set[str]:
    """``text``'s words, split at case changes, digits and punctuation: ``WanPipeline`` -> wan, pipeline;
    ``wan2.2-ti2v-5b`` -> wan, ti, v, b; ``LTX2Pipeline`` -> ltx, pipeline."""
    pieces = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+", text)
    return {piece.lower() for piece in pieces}


def code_words(path: Path) -> Iterator[tuple[int, str]]:
    """The words of ``path``'s code: identifiers, imported names and string literals, but not its docstrings or
    comments (prose may say which models a lever was measured on)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    for node in ast.walk(tree):
        texts: list[str] = []
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
            texts.append(node.value)
        elif isinstance(node, ast.Name):
            texts.append(node.id)
        elif isinstance(node, ast.Attribute):
            texts.append(node.attr)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            texts.append(node.name)
        elif isinstance(node, ast.arg):
            texts.append(node.arg)
        elif isinstance(node, ast.alias):
            texts.extend(filter(None, (node.name, node.asname)))
        elif isinstance(node, ast.ImportFrom) and node.module:
            texts.append(node.module)
        for text in texts:
            for word in words(text):
                yield getattr(node, "lineno", 0), word


def family_keywords() -> dict[str, str]:
    from framecast.engine.families import all_families

    return {word: family.name for family in all_families() for word in family.keywords}


def test_the_family_word_finder_sees_identifiers_and_strings_but_not_prose(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text('"""Measured on Wan and LTX-2."""\nfrom diffusers import WanPipeline\nname = "ltx-2"\n')
    found = {word for _, word in code_words(sample)}
    assert {"wan", "ltx"} <= found and "measured" not in found
    assert "wan" not in words("wanted") and "wan" in words("wan2.2-ti2v-5b")


def test_no_engine_module_outside_families_names_a_model_family():
    keywords = family_keywords()
    assert {"wan", "ltx"} <= set(keywords)
    offenders = []
    for path in sorted(ENGINE.rglob("*.py")):
        relative = path.relative_to(ENGINE)
        if relative.parts[0] in ("families", "presets"):
            continue
        offenders += [f"{relative}:{line}: {keywords[w]}" for line, w in code_words(path) if w in keywords]
    assert offenders == []
