"""Every ```python and ```bash block of docs/*.md and ontologies/README.md runs, in page order."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import ROOT

PAGES = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "ontologies" / "README.md"]
TEACHING = {"training.md", "linking.md", "spacy.md", "evaluation.md", "performance.md", "serving.md",
            "annotation.md"}
BLOCK = re.compile(r"^```(python|bash)\n(.*?)^```", re.S | re.M)

pytestmark = pytest.mark.slow


def test_every_page_has_been_found():
    assert {p.name for p in PAGES} >= {"training.md", "linking.md", "spacy.md", "evaluation.md", "README.md"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_code_blocks_run(page, tmp_path, monkeypatch):
    blocks = BLOCK.findall(page.read_text())
    if page.name in TEACHING or page.parent.name == "ontologies":
        assert blocks, f"{page} has no code block to run"
    (tmp_path / "ontologies").symlink_to(ROOT / "ontologies")
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for number, (language, code) in enumerate(blocks, start=1):
        if language == "python":
            exec(compile(code, f"{page.name} block {number}", "exec"), namespace)
        else:
            run = subprocess.run(["bash", "-euo", "pipefail", "-c", code], env=env, capture_output=True, text=True)
            assert run.returncode == 0, f"{page.name} block {number} failed:\n{run.stderr[-2000:]}"
