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
