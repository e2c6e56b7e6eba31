"""The layers of docs/architecture.md hold: import-linter's contracts pass on the code, and a
planted wrong import breaks them (so the check cannot pass vacuously). Files over 400 lines
are named in the architecture doc with the reason."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
LONG_FILE_LINES = 400


def lint_imports(project: Path, src: Path) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(project / "pyproject.toml")],
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layers_hold():
    result = lint_imports(ROOT, SRC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "planted", "contract"),
    [
        ("core/clock.py", "import sijill.registry.models", "Layers"),
        ("security/roles.py", "from sijill.registry import codes", "Layers"),
        ("registry/read.py", "import sijill.analytics.summary", "Layers"),
        ("registry/api.py", "import sijill.api", "Layers"),
        ("synth/typos.py", "import sijill.security.roles", "synth beside the chain"),
        ("identity/names.py", "import sqlalchemy", "identity is pure rules"),
    ],
)
def test_a_wrong_import_breaks_the_contract(tmp_path, module, planted, contract):
    shutil.copytree(SRC / "sijill", tmp_path / "src" / "sijill")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = tmp_path / "src" / "sijill" / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{planted}  # planted\n")
    result = lint_imports(tmp_path, tmp_path / "src")
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout


def test_every_long_file_is_explained_in_the_architecture_doc():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    long_files = [
        path.relative_to(ROOT).as_posix()
        for path in sorted(SRC.rglob("*.py"))
        if len(path.read_text(encoding="utf-8").splitlines()) > LONG_FILE_LINES
    ]
    unexplained = [path for path in long_files if f"`{path}`" not in doc]
    assert not unexplained, f"over {LONG_FILE_LINES} lines, not in docs/architecture.md"
