"""README.md is the package's page on PyPI and GitHub; README, docs/ and
benchmarks/README.md speak to users.

- The README is short (at most 200 lines) and keeps its two set-up commands at the top.
- Every link and image in it is absolute (https) or a file of the checkout, and every
  absolute link into this repository names a file that exists: PyPI shows the README
  without the repository around it. (``twine check`` runs in .ci/package.)
- The project URLs of setup.cfg point to the same repository.
- No development history and no tools users do not have in user text.
"""

from __future__ import annotations

import configparser
import os
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
REPO = "keras-resnet-builder/keras-resnet-builder"
#: The two commands of the README's first lines: the main job and the tests, each one line
#: that works on a fresh machine with only python3.
SETUP = [
    'python3 -m venv .venv && .venv/bin/pip install -e ".[cpu]" && .venv/bin/keras-resnet compare',
    'python3 -m venv .venv && .venv/bin/pip install -e ".[dev]" && .venv/bin/python -m pytest -n 2',
]
MAX_LINES = 200


def links(text: str) -> list:
    """Targets of Markdown links and images, reference definitions and HTML src/href."""
    inline = re.findall(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)", text)
    refs = re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", text, flags=re.M)
    html = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", text)
    return inline + refs + html


def test_readme_is_at_most_200_lines():
    assert len(README.splitlines()) <= MAX_LINES


def test_the_two_setup_commands_are_at_the_top():
    top = README.splitlines()[:6]
    for command in SETUP:
        assert any(line.startswith(command) for line in top), command


def test_every_link_is_absolute_or_a_file_of_the_checkout():
    found = links(README)
    assert len(found) >= 10
    bad = []
    for target in found:
        if target.startswith("https://"):
            continue
        if target.startswith(("http://", "#", "mailto:")):
            bad.append(f"{target}: use https (PyPI) or a file")
            continue
        if not (ROOT / target.split("#")[0]).exists():
            bad.append(f"{target}: no such file")
        else:
            bad.append(f"{target}: relative links break on PyPI; use the GitHub URL")
    assert not bad, bad


def test_absolute_links_into_this_repository_name_files_that_exist():
    pattern = re.compile(
        rf"https://(?:github\.com/{REPO}/(?:blob|tree)/main|"
        rf"raw\.githubusercontent\.com/{REPO}/main)/([^)#\s\"']+)")
    paths = [pattern.match(t).group(1) for t in links(README) if pattern.match(t)]
    assert len(paths) >= 10
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, missing
    assert f"https://raw.githubusercontent.com/{REPO}/main/docs/compare-digits.png" in README


def test_project_urls_point_to_the_repository():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    urls = dict(line.split(" = ", 1) for line in
                config["metadata"]["project_urls"].strip().splitlines())
    assert {"Documentation", "Source", "Changelog"} <= set(urls)
    for url in [*urls.values(), config["metadata"]["url"]]:
        assert url.startswith(f"https://github.com/{REPO}"), url
    assert (ROOT / "CHANGELOG.md").exists() and (ROOT / "docs").is_dir()


# ----------------------------------------------------------------------- user text
USER_TEXT = [ROOT / "README.md", ROOT / "benchmarks" / "README.md",
             *sorted((ROOT / "docs").rglob("*.md"))]
#: Development history and tools users do not have: (pattern, why it is not user text).
FORBIDDEN = [
    (r"\bissues? #?\d+", "an issue number"),
    (r"(?<![\w/&])#\d{2,4}\b", "an issue reference"),
    (r"\bsessions?\b", "who measured what when"),
    (r"\bhelpers?\b", "the project's helpers"),
    (r"\bthe lead\b", "the project's roles"),
    (r"\b(?:this|first|second|last|previous|next) round\b", "a round of work"),
    (r"\bround \d+\b", "a round of work"),
    (r"carry=", "a tool users do not have"),
    (r"\$OUT\b", "a tool users do not have"),
    (r"\bdevice tool\b", "a tool users do not have"),
    (r"\bmachine kind\b", "the project's machines"),
    (r"\bthis project's\b", "the project's machines"),
    (r"\blent\b", "a borrowed machine"),
    (r"\bthe lecture\b", "a reference without a source"),
    (r"/work/", "a path of a development machine"),
]


@pytest.mark.parametrize("path", USER_TEXT, ids=lambda p: str(p.relative_to(ROOT)))
def test_user_text_has_no_development_history(path):
    text = path.read_text(encoding="utf-8")
    hits = []
    for number, line in enumerate(text.splitlines(), 1):
        for pattern, why in FORBIDDEN:
            for match in re.finditer(pattern, line, flags=re.I):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {match.group(0)!r} ({why})")
    assert not hits, "\n".join(hits)


def test_the_forbidden_patterns_catch_what_they_are_for():
    samples = ["as measured in issue 14", "see #27 for that", "the first session measured",
               "ask a helper", "run it with carry=[\".whl\"]", "results come back in $OUT",
               "the device tool runs it", "in this round", "the lecture's argument"]
    for sample in samples:
        assert any(re.search(p, sample, flags=re.I) for p, _ in FORBIDDEN), sample
    fine = ["keras.backend.clear_session()", "keras-team/keras#20585", "## Install",
            "in interleaved rounds", "--rounds 2", "run folders"]
    for sample in fine:
        assert not any(re.search(p, sample, flags=re.I) for p, _ in FORBIDDEN), sample


# ----------------------------------------------------------------------- quickstart
@pytest.mark.slow
def test_the_readme_quickstart_runs_as_written(tmp_path, monkeypatch):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) == 3 and 8 <= len(blocks[0].splitlines()) <= 15  # the quickstart
    monkeypatch.chdir(tmp_path)
    # the export's check runs in a fresh process: it must import this checkout
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    namespace: dict = {}
    for i, block in enumerate(blocks):  # the quickstart, then its sections' snippets
        exec(compile(block, f"README.md (block {i + 1})", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "runs" / "r20" / "model.keras").exists()
    assert (tmp_path / "exported" / "r20.keras").exists()
    assert {"depth", "l2"} <= set(namespace["search"].best_values)
    assert len(namespace["result"].history["loss"]) == 3
    assert namespace["tuned"].output.shape[-1] == 5 and namespace["x"].shape == (1, 64, 64, 3)
    frozen = [layer.name for layer in namespace["tuned"].layers if not layer.trainable]
    assert frozen and all(not name.startswith("stage4") for name in frozen)
    shapes = {k: tuple(v.shape) for k, v in namespace["features"].output.items()}
    assert shapes == {"P3": (None, 28, 28, 512), "P4": (None, 14, 14, 1024),
                      "P5": (None, 7, 7, 2048)}
