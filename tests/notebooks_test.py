"""The Colab notebooks: quickstart.ipynb runs end to end (tiny steps), both are valid nbformat.

quickstart.ipynb is executed with nbclient in a kernel of this interpreter (a kernelspec
written to a temporary JUPYTER_PATH), with JDRUM_NOTEBOOK_CI=1 (a few training steps, no
installation) and JDRUM_NOTEBOOK_DIR pointing at a temporary folder. About 2-3 minutes on 2
CPU cores.
"""

from __future__ import annotations

import json
import pathlib
import sys
import time

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager

NOTEBOOKS = pathlib.Path(__file__).resolve().parents[1] / "notebooks"
KERNEL_NAME = "jdrum-notebook-test"
CELL_TIMEOUT_S = 900


def read(name: str):
    return nbformat.read(NOTEBOOKS / name, as_version=4)


@pytest.mark.parametrize("name", ["quickstart.ipynb", "train_your_data.ipynb"])
def test_notebook_is_valid_and_parses(name):
    notebook = read(name)
    nbformat.validate(notebook)
    assert notebook.nbformat == 4
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    # Every code cell, IPython magics and shell escapes included, compiles as Python.
    transformer = TransformerManager()
    for i, cell in enumerate(code):
        compile(transformer.transform_cell(cell.source), f"{name} code cell {i}", "exec")
    text = "\n".join(cell.source for cell in notebook.cells)
    assert "git+https://" not in text  # installed from the user's checkout, not a URL


def test_train_your_data_runs_every_stage():
    text = "\n".join(cell.source for cell in read("train_your_data.ipynb").cells)
    for command in (
        "jdrum.build_dataset",
        "vqvae_drums.py",
        "vqvae_drumless.py",
        "jdrum.tokenize",
        "lm_seq2seq_low.py",
        "hifigan_v1.py",
        "hifigan_v1_finetune.py",
        "jdrum.sample",
        "jdrum.evaluate",
    ):
        assert command in text, command
    for config in ("vqvae_drums", "vqvae_drumless", "lm_seq2seq_low", "hifigan_v1"):
        assert (NOTEBOOKS.parent / "configs" / f"{config}.py").exists()


@pytest.fixture
def kernel_name(tmp_path, monkeypatch):
    """A kernelspec that starts ipykernel with this very interpreter (not `python` on PATH)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "jdrum test",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return KERNEL_NAME


@pytest.mark.slow  # executes every cell: ~4.5 min on 2 cores
def test_quickstart_executes(tmp_path, monkeypatch, kernel_name):
    from nbclient import NotebookClient

    workdir = tmp_path / "work"
    monkeypatch.setenv("JDRUM_NOTEBOOK_CI", "1")
    monkeypatch.setenv("JDRUM_NOTEBOOK_DIR", str(workdir))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    notebook = read("quickstart.ipynb")
    client = NotebookClient(
        notebook,
        kernel_name=kernel_name,
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError with the cell and its traceback on failure
    print(f"quickstart.ipynb executed in {time.perf_counter() - start:.0f} s")

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    for cell in code:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
    # The run directory has every stage.
    for stage in ("vqvae_drums", "vqvae_drumless", "lm", "tokens"):
        assert (workdir / "run" / stage).is_dir(), stage
    assert len(list((workdir / "plots").glob("*.png"))) == 4
    # The last cell plays the input and every take's drums and mix.
    players = [
        o
        for o in code[-1].outputs
        if o.output_type in ("display_data", "execute_result")
        and "<audio" in o.get("data", {}).get("text/html", "")
    ]
    assert len(players) == 1 + 2 * 2  # NUM_TAKES = 2
    # The plot cell showed four images.
    images = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 4
