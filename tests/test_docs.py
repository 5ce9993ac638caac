"""API reference lives in docstrings: every public name has one, in the Keras style."""

import inspect

import keras_resnet as kr


def public_objects():
    for name in kr.__all__:
        if name.startswith("__"):
            continue
        yield name, getattr(kr, name)


def test_every_public_name_has_a_docstring():
    missing = [name for name, obj in public_objects() if not inspect.getdoc(obj)]
    assert missing == []


def test_public_functions_document_their_arguments_and_returns():
    bad = []
    for name, obj in public_objects():
        if not inspect.isfunction(obj):
            continue
        doc = inspect.getdoc(obj)
        params = [p for p in inspect.signature(obj).parameters.values()
                  if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if params and "Args:" not in doc:
            bad.append(f"{name}: no Args")
        for p in params:
            if p.name not in doc:
                bad.append(f"{name}: {p.name} undocumented")
        if "Returns:" not in doc and inspect.signature(obj).return_annotation not in (
                None, "None"):
            bad.append(f"{name}: no Returns")
    assert bad == []


def test_module_docstrings():
    import pkgutil

    import keras_resnet

    missing = []
    for info in pkgutil.iter_modules(keras_resnet.__path__):
        module = __import__(f"keras_resnet.{info.name}", fromlist=["x"])
        if not (module.__doc__ or "").strip():
            missing.append(info.name)
    assert missing == []


def page_blocks(language, page="docs/specs.md"):
    import os
    import re

    text = open(os.path.join(os.path.dirname(__file__), "..", page), encoding="utf-8").read()
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.S)


def test_spec_file_examples_of_the_docs_are_valid():
    """Every JSON/YAML block of the specs page (spec files as users write them) loads."""
    import json

    import yaml

    specs = [json.loads(b) for b in page_blocks("json")] + [
        yaml.safe_load(b) for b in page_blocks("yaml")]
    assert len(specs) >= 2
    for data in specs:
        assert kr.ModelSpec.from_dict(data).blocks


def test_changelog_has_a_dated_section_for_this_version():
    """A release is documented: CHANGELOG.md has '## [<version>] - YYYY-MM-DD'."""
    import os
    import re

    path = os.path.join(os.path.dirname(__file__), "..", "CHANGELOG.md")
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    heading = re.search(rf"^## \[{re.escape(kr.__version__)}\] - \d{{4}}-\d{{2}}-\d{{2}}$",
                        text, re.M)
    assert heading, f"CHANGELOG.md has no dated section for {kr.__version__}"
    assert text.index("## [Unreleased]") < heading.start()  # newest first
