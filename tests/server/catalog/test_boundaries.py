"""The catalog's boundaries, read from the source: only the repositories (and the migrations) import the ORM
tables, and the status machine imports nothing that touches a database, a file or a clock."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
TABLES = "server.catalog.tables"
MAY_IMPORT_TABLES = {"server/catalog/repositories.py", "server/catalog/migrations/env.py"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_only_the_repositories_import_the_tables() -> None:
    importers = {str(p.relative_to(ROOT)) for folder in ("server", "voxgate", "benchmarks", "tests")
                 for p in (ROOT / folder).rglob("*.py") if TABLES in _imports(p)}
    assert importers <= MAY_IMPORT_TABLES, importers - MAY_IMPORT_TABLES


def test_the_status_machine_is_pure() -> None:
    allowed = {"__future__", "datetime", "collections.abc", "dataclasses", "enum", "typing", "protocol.errors",
               "server.catalog.lifecycle"}
    modules = {name for name in _imports(ROOT / "server/catalog/status.py")
               if not any(name.startswith(f"{a}.") for a in allowed)}
    assert modules <= allowed, modules - allowed
