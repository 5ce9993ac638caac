"""The pages docs/pretrained.md and docs/backbones.md: every Python block runs.

Blocks run in order in one namespace per page, as a reader would paste them. A
block whose first line is ``# needs a network`` downloads weights and is only
checked to compile; ``# needs keras-hub`` runs where keras-hub is installed.
"""

import importlib.util
import os
import re

import pytest

from keras_resnet import weights as W

DOCS = os.path.join(os.path.dirname(__file__), "..", "docs")


def blocks(page):
    with open(os.path.join(DOCS, page), encoding="utf-8") as fh:
        return re.findall(r"```python\n(.*?)```", fh.read(), flags=re.S)


@pytest.mark.parametrize("page", ["pretrained.md", "backbones.md"])
def test_every_python_block_runs(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    ran = 0
    for i, block in enumerate(blocks(page)):
        code = compile(block, f"{page} (block {i + 1})", "exec")
        if block.startswith("# needs a network"):
            continue
        if block.startswith("# needs keras-hub") and importlib.util.find_spec(
                "keras_hub") is None:
            continue
        exec(code, namespace)  # noqa: S102
        ran += 1
    assert ran >= 4


def test_the_weights_table_is_current():
    with open(os.path.join(DOCS, "pretrained.md"), encoding="utf-8") as fh:
        assert W.table_markdown() in fh.read()
