"""The layering of the package, read from its import statements (so it stays true as the code grows).

Order: text → ontology → model → index → link → apps; a layer imports only itself, the layers before it
and the base modules (errors, _io, _version, _lazy). text/ and ontology/ never import torch; nothing below
apps/ imports spaCy, FastAPI, uvicorn, pydantic or argparse at module level; nothing imports benchmarks.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

from .conftest import ROOT

LAYERS = ["text", "ontology", "model", "index", "link", "apps"]
BASE = {"errors", "_io", "_version", "_lazy"}
FACES_ONLY = {"spacy", "fastapi", "uvicorn", "starlette", "pydantic", "argparse"}
NO_TORCH = {"text", "ontology"}


def _imports(tree: ast.AST, module: str, is_package: bool):
    """(imported module, line, at module level) for every import of a file, relative ones resolved."""
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node

    def module_level(node: ast.AST) -> bool:
        while node in parents:
            node = parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                return False
        return True

    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno, module_level(node)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
                names = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
            else:
                names = [node.module or ""]
            for name in names:
                yield name, node.lineno, module_level(node)


def _layer(parts: list[str]) -> int | None:
    """Position of a module of the package in the layer order; -1 for the base modules, None for the root."""
    if len(parts) < 2:
        return None
    if parts[1] in BASE:
        return -1
    return LAYERS.index(parts[1]) if parts[1] in LAYERS else None


def violations(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).with_suffix("")
        is_package = rel.name == "__init__"
        parts = list(rel.parts[:-1] if is_package else rel.parts)
        module = ".".join(parts)
        own = _layer(parts)
        for name, line, top in _imports(ast.parse(path.read_text(), str(path)), module, is_package):
            where = f"{path.relative_to(root.parent)}:{line}"
            head = name.split(".")[0]
            if head == "benchmarks":
                found.append(f"{where}: imports benchmarks")
            if head == root.name and own is not None:
                other = _layer(name.split("."))
                if other is None:
                    found.append(f"{where}: {module} imports the package root ({name})")
                elif other > own:
                    found.append(f"{where}: {module} ({LAYERS[own] if own >= 0 else 'base'}) imports {name}, "
                                 f"a later layer")
            if own is not None and own >= 0 and LAYERS[own] in NO_TORCH and head == "torch":
                found.append(f"{where}: {module} imports torch")
            if own is not None and (own < 0 or LAYERS[own] != "apps") and head in FACES_ONLY and top:
                found.append(f"{where}: {module} imports {head} at module level")
    return found


def test_the_package_keeps_its_layers():
    assert violations(ROOT / "entitylink") == []


def test_the_check_finds_each_kind_of_violation(tmp_path):
    pkg = tmp_path / "entitylink"
    for sub in ("text", "ontology", "index", "link", "apps"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("")
    (pkg / "text" / "bad.py").write_text("import torch\nfrom ..link import linker\nfrom .. import errors\n")
    (pkg / "ontology" / "ok.py").write_text("from ..text import bad\nfrom ..errors import X\n")
    (pkg / "index" / "bad.py").write_text(textwrap.dedent("""
        import spacy
        from entitylink import Encoder
        def later():
            import fastapi
            import benchmarks
    """))
    (pkg / "apps" / "fine.py").write_text("import spacy\nimport argparse\nfrom ..link import linker\n")
    found = violations(pkg)
    assert any("text/bad.py:1" in v and "torch" in v for v in found)
    assert any("text/bad.py:2" in v and "later layer" in v for v in found)
    assert any("index/bad.py:2" in v and "spacy at module level" in v for v in found)
    assert any("index/bad.py:3" in v and "package root" in v for v in found)
    assert any("index/bad.py" in v and "benchmarks" in v for v in found)
    assert not any("fastapi" in v for v in found)  # inside a function: allowed
    assert not any("ontology/ok.py" in v or "apps/fine.py" in v or "errors" in v for v in found)
    assert len(found) == 5


def test_the_command_line_help_loads_no_torch():
    code = ("import sys\nfrom entitylink.apps.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'transformers', 'faiss', 'spacy', 'fastapi') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip().splitlines()[-1] == "[]"
    code = "import sys, entitylink\nentitylink.Ontology\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"
