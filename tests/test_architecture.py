"""The import arrows of ARCHITECTURE.md, enforced with import-linter."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(lint)], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


def test_the_server_process_loads_no_training_code() -> None:
    """The contracts see imports; this sees what a started server's process really loaded."""
    probe = ("import sys, server.app; "
             "print(sorted(m for m in sys.modules if m.startswith(('engine.recipe', 'engine.acoustic', "
             "'engine.whisper.adapt', 'server.runtime.training_jobs'))))")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=True)
    assert proc.stdout.strip() == "[]"


def test_server_has_no_import_cycles() -> None:
    import grimp

    graph = grimp.build_graph("server")
    modules = sorted(graph.modules)
    cycles = [(a, b) for a in modules for b in modules
              if a < b and graph.chain_exists(importer=a, imported=b) and graph.chain_exists(importer=b, imported=a)]
    assert cycles == []
