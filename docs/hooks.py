"""Build-time content of the documentation site (MkDocs hooks; see mkdocs.yml).

A page asks for generated content with an HTML comment alone on a line:

    <!-- generated: presets-table -->        every preset: input, parameters, FLOPs, weights
    <!-- generated: weights-table -->        kr.weights.table_markdown()
    <!-- generated: cli -->                  every command's --help, from cli.make_parser()
    <!-- generated: api keras_resnet -->     the public names of keras_resnet.__all__
    <!-- generated: api MODULE -->           one module's public names (its __all__)
    <!-- generated: include PATH -->         a file of the repository (CHANGELOG.md, ...)
    <!-- generated: benchmark-results -->    the files of benchmarks/results/
    <!-- generated: modules -->              each module of the package and what it owns

Everything comes from the checkout the site is built from, so nothing generated is
committed and nothing can go stale. The preset table builds every preset once (one to two
minutes on two cores); it is cached in .cache/docs/ under a hash of the package's source.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import hashlib
import inspect
import json
import logging
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_URL = "https://github.com/keras-resnet-builder/keras-resnet-builder/blob/main/"
MARKER = re.compile(r"^<!-- generated: ([\w.-]+)(?: (.*?))? -->$", re.M)
log = logging.getLogger("mkdocs.hooks.keras_resnet")

# Sections of the API reference page, in reading order (modules not named go last).
API_ORDER = [
    "keras_resnet.spec", "keras_resnet.builders", "keras_resnet.plan",
    "keras_resnet.registry", "keras_resnet.blocks", "keras_resnet.layers",
    "keras_resnet.inputs", "keras_resnet.features", "keras_resnet.finetune",
    "keras_resnet.flops", "keras_resnet.report", "keras_resnet.plots", "keras_resnet.data",
    "keras_resnet.runfolder", "keras_resnet.training", "keras_resnet.experiment",
    "keras_resnet.tuning", "keras_resnet.serving",
]


# Docstrings that the API reference cannot parse, known and to be fixed in keras_resnet/:
# (file, part of the message). Each is logged as INFO instead of failing the strict build;
# anything not listed here still fails it.
#: (file, part of the message) of docstring warnings to let pass as INFO while they are
#: being fixed; empty: every docstring warning fails the build.
KNOWN_DOCSTRING_PROBLEMS: list[tuple[str, str]] = []


class _KnownProblems(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            message = record.getMessage()
            if any(f in message and part in message for f, part in KNOWN_DOCSTRING_PROBLEMS):
                record.levelno, record.levelname = logging.INFO, "INFO"
                record.msg, record.args = f"known docstring problem: {message}", ()
        return True


def on_config(config, **kwargs):
    # The package of this checkout, whatever is installed.
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("griffe", "mkdocs.plugins.griffe"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _KnownProblems) for f in logger.filters):
            logger.addFilter(_KnownProblems())
    return config


def on_page_markdown(markdown, page, config, files, **kwargs):
    def replace(match: re.Match) -> str:
        kind, arg = match.group(1), (match.group(2) or "").strip()
        if kind not in GENERATORS:
            raise ValueError(f"{page.file.src_uri}: unknown generated content {kind!r}")
        return GENERATORS[kind](arg)

    return MARKER.sub(replace, markdown)


# ------------------------------------------------------------------ presets
def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "keras_resnet").rglob("*.py")):
        digest.update(path.relative_to(ROOT).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _preset_rows() -> list:
    cache = ROOT / ".cache" / "docs" / f"presets-{_source_hash()}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    log.info("Building every preset for the preset table (cached in %s)", cache.parent)
    import keras

    import keras_resnet as kr
    from keras_resnet.report import trainable_params

    rows = []
    for name in kr.presets.TABLE:
        model = kr.build(name)
        spec = kr.spec_of(model)
        rows.append(dict(name=name, input="x".join(str(d) for d in spec.input_shape),
                         params=trainable_params(model), macs=kr.flops(model),
                         residual=spec.residual, about=kr.presets.describe(name),
                         weights=kr.weights.sources(name)))
        keras.backend.clear_session()
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(rows, indent=1))
    os.replace(tmp, cache)
    return rows


def presets_table(arg: str) -> str:
    lines = ["| preset | input | parameters | GFLOPs | pretrained weights | what |",
             "|---|---|---:|---:|---|---|"]
    for r in _preset_rows():
        found = []
        if r["weights"]["keras.applications"]:
            found.append("keras.applications")
        if r["weights"]["keras_hub"]:
            n = len(r["weights"]["keras_hub"])
            found.append(f"keras-hub ({n})" if n > 1 else "keras-hub")
        lines.append(f"| `{r['name']}` | {r['input']} | {r['params']:,} | "
                     f"{r['macs'] / 1e9:.3f} | {', '.join(found) or '-'} | {r['about']} |")
    return "\n".join(lines) + "\n"


def weights_table(arg: str) -> str:
    import keras_resnet as kr

    return kr.weights.table_markdown()


# ------------------------------------------------------------------ command line
@contextlib.contextmanager
def _columns(width: int):
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = str(width)
    try:
        yield
    finally:
        if old is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = old


def cli(arg: str) -> str:
    from keras_resnet.cli import make_parser

    with _columns(96):
        parser = make_parser()
        out = [f"## {parser.prog}\n", "```text", parser.format_help().rstrip(), "```\n"]
        commands = next(a for a in parser._actions
                        if isinstance(a, argparse._SubParsersAction))
        for name, sub in commands.choices.items():
            out += [f"## {parser.prog} {name}\n", "```text", sub.format_help().rstrip(),
                    "```\n"]
    return "\n".join(out)


# ------------------------------------------------------------------ API reference
def _first_line(doc: str | None) -> str:
    return (doc or "").strip().split("\n\n")[0].replace("\n", " ").strip()


def _home(obj) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def api(arg: str) -> str:
    import importlib

    import keras_resnet as kr

    module = importlib.import_module(arg)
    if arg != "keras_resnet":
        # Its public names; those that keras_resnet itself exports are documented on the
        # package's page (one place per object) and linked from here.
        names = list(getattr(module, "__all__", None) or [
            n for n, v in vars(module).items()
            if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
            and v.__module__ == arg])
        top = {n for n in kr.__all__ if not n.startswith("__")}
        shown = [n for n in names if not (n in top and getattr(kr, n) is getattr(module, n))]
        linked = [n for n in names if n not in shown]
        lines = []  # the module's docstring opens the page
        if linked:
            refs = ", ".join(f"[`kr.{n}`][{_home(getattr(module, n))}]" for n in linked)
            lines += [f"Documented with the package: {refs}.", ""]
        # Names a lazy package (PEP 562 __getattr__) loads on first use are not in its
        # namespace, where the renderer looks: each is rendered from its home module.
        lazy = [n for n in shown if n not in vars(module)]
        lines += [f"::: {arg}", "    options:", "      show_root_heading: false",
                  "      heading_level: 2",
                  f"      members: {json.dumps([n for n in shown if n not in lazy])}"]
        for n in lazy:
            lines += ["", f"::: {getattr(module, n).__module__}.{n}", "    options:",
                      "      heading_level: 2"]
        return "\n".join(lines) + "\n"
    groups: dict = {}
    for name in module.__all__:
        obj = getattr(module, name)
        if name.startswith("__") or inspect.ismodule(obj):
            continue
        home = obj.__module__
        section = next((m for m in API_ORDER if home == m or home.startswith(m + ".")), home)
        groups.setdefault(section, []).append(f"{home}.{name}")
    order = sorted(groups, key=lambda m: API_ORDER.index(m) if m in API_ORDER else 99)
    out = []
    for section in order:
        doc = importlib.import_module(section).__doc__
        out += [f"## `{section}`", "", _first_line(doc), ""]
        out += [f"::: {path}\n" for path in groups[section]]
    return "\n".join(out)


# ------------------------------------------------------------------ files
def _absolute_links(text: str, base: str) -> str:
    """Relative links of an included file, made absolute (to the file on GitHub)."""

    def fix(match: re.Match) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"^(https?:|mailto:|#)", target):
            return match.group(0)
        path = os.path.normpath(os.path.join(base, target)).replace(os.sep, "/")
        return f"[{label}]({SOURCE_URL}{path})"

    return re.sub(r"\[([^\]]*)\]\(([^)\s]+)\)", fix, text)


def include(arg: str) -> str:
    path = ROOT / arg
    return _absolute_links(path.read_text(encoding="utf-8"), os.path.dirname(arg))


def modules(arg: str) -> str:
    lines = ["| module | what it owns |", "|---|---|"]
    package = ROOT / "keras_resnet"
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        summary = _first_line(doc).replace("|", "\\|")
        lines.append(f"| `{name}` | {summary} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ benchmarks
def _meta(data: dict) -> dict:
    meta = dict(data.get("meta", {}))
    for key in ("command", "machine", "cpus", "cpu", "date"):
        if key in data and key not in meta:
            meta[key] = data[key]
    return meta


def _command(text: str) -> str:
    text = re.sub(r"\s--out\s+\S+", "", text)  # where the JSON went on that machine
    text = re.sub(r"^(python3?\s+)?", "python ", text.strip())
    return text


def benchmark_results(arg: str) -> str:
    lines = ["| file | command | machine recorded in the file |", "|---|---|---|"]
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        meta = _meta(json.loads(path.read_text()))
        machine = ", ".join(str(v) for v in (
            meta.get("cpu"), meta.get("machine"),
            f"{meta['cpus']} cores" if meta.get("cpus") else None) if v) or "-"
        command = f"`{_command(meta['command'])}`" if meta.get("command") else "-"
        rel = path.relative_to(ROOT).as_posix()
        lines.append(f"| [{path.name}]({SOURCE_URL}{rel}) | {command} | {machine} |")
    return "\n".join(lines) + "\n"


GENERATORS = {
    "presets-table": presets_table,
    "weights-table": weights_table,
    "cli": cli,
    "api": api,
    "include": include,
    "modules": modules,
    "benchmark-results": benchmark_results,
}
