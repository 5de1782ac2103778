"""The quickstart notebook runs top to bottom (small settings, embedded defaults)."""

import os

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow


def test_quickstart_notebook_runs(tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    client = nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = "".join(
        out.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    lines = outputs.splitlines()
    assert any(line.startswith("untuned:") for line in lines)
    assert any(line.startswith("tuned:") for line in lines)  # its own line, not the "untuned:" one
    assert any(" steps in " in line for line in lines)
    assert (tmp_path / "quickstart-index" / "meta.json").exists()
    html = [o for c in notebook.cells for o in c.get("outputs", []) if "text/html" in o.get("data", {})]
    assert any("entities" in o["data"]["text/html"] for o in html)  # displaCy markup
    assert os.path.isdir(tmp_path / "quickstart-model")
