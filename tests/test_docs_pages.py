"""Every Python block of every page of the documentation runs, as a reader would paste it.

A page's blocks run in order, in one namespace, in an empty temporary folder. A block
that downloads or takes minutes is marked in the Markdown with ``<!-- no-run: why -->``
on the line before it: it is only compiled. Four pages are run by the tests of their
subject (COVERED): those tests are checked to exist. Each run prints how many blocks ran.
The test names a page gives as proof (``tests/FILE.py::TEST``) must exist too.
"""

from __future__ import annotations

import ast
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
#: Pages whose blocks the tests of their subject run (with the data they need).
COVERED = {
    "export.md": "tests/test_export.py::test_export_docs_run_as_written",
    "pretrained.md": "tests/test_pretrained_docs.py::test_every_python_block_runs",
    "backbones.md": "tests/test_pretrained_docs.py::test_every_python_block_runs",
    "image-folders.md": "tests/test_imagecheck.py::test_the_image_folders_page_runs",
}
#: Pages that train (more than about 20 s on two cores): run with the slow tests.
SLOW = {"training.md", "tuning.md", "experiment.md"}
BLOCK = re.compile(r"(?:^<!-- no-run: (?P<why>.+?) -->\n)?^```python\n(?P<code>.*?)^```",
                   re.S | re.M)


def blocks(page: str) -> list:
    """[(code, why it does not run or None)] of a page, in order."""
    text = (DOCS / page).read_text(encoding="utf-8")
    return [(m.group("code"), m.group("why")) for m in BLOCK.finditer(text)]


def test_function_exists(reference: str) -> bool:
    path, _, name = reference.partition("::")
    file = ROOT / path
    if not file.exists():
        return False
    tree = ast.parse(file.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.FunctionDef) and n.name == name for n in ast.walk(tree))


test_function_exists.__test__ = False  # a helper, not a test


def params():
    for page in PAGES:
        if page in COVERED or not blocks(page):
            continue
        marks = [pytest.mark.slow] if page in SLOW else []
        yield pytest.param(page, marks=marks, id=page)


@pytest.mark.parametrize("page", list(params()))
def test_the_python_blocks_of_the_page_run(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # exports and trials run in fresh processes: they must import this checkout
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    namespace: dict = {"__name__": f"docs.{page}"}
    ran, skipped = 0, []
    for i, (code, why) in enumerate(blocks(page), 1):
        compiled = compile(code, f"docs/{page} (block {i})", "exec")
        if why:
            skipped.append(f"block {i}: {why}")
            continue
        exec(compiled, namespace)  # noqa: S102
        ran += 1
    with capsys.disabled():
        print(f"\ndocs/{page}: {ran} Python blocks ran"
              + (f", {len(skipped)} not run ({'; '.join(skipped)})" if skipped else ""))
    assert ran >= 1


def test_every_page_is_run_here_or_by_the_test_of_its_subject(capsys):
    rows, total, not_run = [], 0, 0
    for page in PAGES:
        found = blocks(page)
        total += len(found)
        not_run += sum(1 for _, why in found if why)
        if page in COVERED:
            assert test_function_exists(COVERED[page]), COVERED[page]
            where = COVERED[page]
        else:
            where = "here" + (" (slow)" if page in SLOW else "")
        rows.append(f"  {page:22s} {len(found):2d} blocks  {where}")
    with capsys.disabled():
        print(f"\n{total} Python blocks in {len(PAGES)} pages ({not_run} marked no-run):\n"
              + "\n".join(rows))
    assert total >= 30


def test_every_no_run_mark_says_why_and_stands_before_a_block():
    for page in PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        marks = re.findall(r"^<!-- no-run:(.*?)-->$", text, flags=re.M)
        assert all(why.strip() for why in marks), page
        assert len(marks) == sum(1 for _, why in blocks(page) if why), \
            f"docs/{page}: a no-run mark that is not on the line before a ```python block"


def test_tests_named_as_proof_exist():
    named = set()
    for page in PAGES:
        text = (DOCS / page).read_text(encoding="utf-8")
        named |= set(re.findall(r"(tests/test_\w+\.py::test_\w+)", text))
    assert len(named) >= 30
    missing = sorted(n for n in named if not test_function_exists(n))
    assert not missing, missing
