"""Imports go one way, and the package face is lazy.

The import graph is built from the source (ast), every import included: at
the top, inside functions, under TYPE_CHECKING. The tests fail on a cycle or a
forbidden edge, naming the edge:

- no cycle anywhere in keras_resnet/;
- no library module imports the command line (keras_resnet.cli);
- tuning imports nothing from the experiment; serving nothing from training;
- the Keras-free core (spec, plan, registry, the run folder, the process pool,
  the tuner's ledger, ...) imports no Keras, TensorFlow or JAX, and nothing of
  the package that does;
- ``import keras_resnet`` loads the builder side only; workflows load on first use.
"""

import ast
import os
import subprocess
import sys
import textwrap

import pytest

import keras_resnet

PACKAGE = os.path.dirname(keras_resnet.__file__)
ROOT = "keras_resnet"
#: Modules that import no Keras, TensorFlow or JAX (module names without "keras_resnet.").
CORE = ("spec", "plan", "registry", "preprocessing", "runfolder", "parallel", "_runtime",
        "_checks", "_io", "_version", "_table", "tuning", "tuning.ledger", "serving.formats",
        "serving.machine")
BACKENDS = ("keras", "tensorflow", "jax", "keras_tuner")
#: What ``import keras_resnet`` may load: the spec and the builder side.
BUILDER_SIDE = {"", "_checks", "_io", "_runtime", "_version", "blocks", "builders", "flops",
                "layers", "plan", "presets", "registry", "shortcuts", "spec", "preprocessing",
                "weights", "features", "finetune", "inputs"}


def modules():
    """{module name: path} of every module of the package ("" is the package)."""
    out = {}
    for root, _, files in os.walk(PACKAGE):
        for f in files:
            if f.endswith(".py"):
                rel = os.path.relpath(os.path.join(root, f), PACKAGE)[:-3].replace(os.sep, ".")
                name = rel.removesuffix("__init__").rstrip(".")
                out[name] = os.path.join(root, f)
    return out


MODULES = modules()


def _resolve(name):
    """A dotted import target as a module of the package ("" for the package), or None."""
    if name != ROOT and not name.startswith(ROOT + "."):
        return None
    rel = name[len(ROOT) + 1:]
    while rel and rel not in MODULES:  # an attribute of a module, e.g. tuning.ALGORITHMS
        rel = rel.rpartition(".")[0]
    return rel


def imports(module):
    """[(imported module of the package, external root, line)] of a module, every
    import statement included (top level, functions, TYPE_CHECKING)."""
    tree = ast.parse(open(MODULES[module]).read())
    package = module if MODULES[module].endswith("__init__.py") else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                out.append((_resolve(alias.name), alias.name.split(".")[0], node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative
                parts = [ROOT] + [p for p in package.split(".") if p]
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                target = _resolve(full) if _resolve(full) == full[len(ROOT) + 1:] else \
                    _resolve(base)
                out.append((target, base.split(".")[0], node.lineno))
    return [(t, ext, line) for t, ext, line in out if t is None or t != module]


def graph():
    return {m: {t for t, _, _ in imports(m) if t is not None} for m in MODULES}


def _show(m):
    return f"{ROOT}.{m}" if m else ROOT


def test_the_import_graph_has_no_cycle():
    edges = graph()
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges[node]):
            if state.get(nxt) == "open":
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import cycle: " + " -> ".join(_show(m) for m in cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)


def test_no_library_module_imports_the_command_line():
    bad = [f"{_show(m)} -> {_show(t)} (line {line})" for m in MODULES if m != "cli"
           for t, _, line in imports(m) if t is not None and t.split(".")[-1] == "cli"]
    assert not bad, "library code imports the command line: " + "; ".join(bad)


@pytest.mark.parametrize("source, forbidden", [("tuning", "experiment"),
                                               ("serving", "training"),
                                               ("serving", "experiment"),
                                               ("serving", "tuning"),
                                               ("training", "tuning"),
                                               ("training", "experiment"),
                                               ("parallel", "training")])
def test_forbidden_edges(source, forbidden):
    bad = [f"{_show(m)} -> {_show(t)} (line {line})" for m in MODULES
           if m == source or m.startswith(source + ".")
           for t, _, line in imports(m)
           if t is not None and (t == forbidden or t.startswith(forbidden + "."))]
    assert not bad, f"{source} must not import {forbidden}: " + "; ".join(bad)


@pytest.mark.parametrize("module", CORE)
def test_core_imports_no_backend_and_nothing_that_does(module):
    keras_side = {m for m in MODULES if m not in CORE}
    for target, root, line in imports(module):
        assert root not in BACKENDS, f"{_show(module)} imports {root} (line {line})"
        assert target is None or target in CORE, (
            f"{_show(module)} -> {_show(target)} (line {line}), which is not Keras-free")
        assert target not in keras_side


def test_import_keras_resnet_loads_the_builder_side_only():
    code = textwrap.dedent("""
        import sys, time
        start = time.perf_counter()
        import keras_resnet
        took = time.perf_counter() - start
        ours = sorted(m[len("keras_resnet"):].lstrip(".") for m in sys.modules
                      if m == "keras_resnet" or m.startswith("keras_resnet."))
        print(ours)
        print([m for m in ("keras_tuner",) if m in sys.modules])  # (Keras loads the rest)
        import keras_resnet as kr
        kr.train, kr.tune, kr.export, kr.compare, kr.RunFolder  # load on first use
        assert "keras_resnet.training" in sys.modules and "keras_tuner" in sys.modules
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-2000:]
    ours, others = (eval(line) for line in out.stdout.strip().splitlines()[-2:])
    assert set(ours) <= BUILDER_SIDE, set(ours) - BUILDER_SIDE
    assert others == []


def test_core_runs_without_keras_loaded():
    """Load the Keras-free core without the package __init__ (which loads the
    builders, hence Keras, so that ``keras.models.load_model`` finds this
    package's layers): a spec is validated and planned, a run folder read, a
    process pool planned, and Keras is never imported."""
    code = textwrap.dedent(f"""
        import sys, types
        for name in ("keras", "tensorflow", "jax"):
            sys.modules[name] = None  # any import of them raises ImportError
        pkg = types.ModuleType("keras_resnet")
        pkg.__path__ = [{PACKAGE!r}]
        sys.modules["keras_resnet"] = pkg
        import keras_resnet.spec as S, keras_resnet.plan as P, keras_resnet.registry as R
        import keras_resnet.runfolder as F, keras_resnet.parallel as W
        spec = S.ModelSpec(input_shape=(32, 32, 3), residual=False, shortcut="A",
                           stem=S.StemSpec(16, 3, 1, pool=None),
                           blocks=[S.BlockSpec("basic", 16, repeat=3),
                                   S.BlockSpec("basic", 32, repeat=3, strides=2)])
        assert P.make_plan(spec).shortcuts()["stage2_block1"] == "A"
        assert S.ModelSpec.from_json(spec.to_json()) == spec
        assert "basic" in R.list_blocks()
        assert F.RunFolder("nowhere").status() == "empty"
        assert W.plan_jobs(8, small_steps=True)[1] == 1
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


def test_the_graph_reader_sees_every_kind_of_import():
    """The reader itself: a cycle through a function-level import and one under
    TYPE_CHECKING are edges too (else the tests above could not fail)."""
    assert "experiment" in {t for t, _, _ in imports("cli")}  # inside cmd_compare
    edges = graph()
    assert "runfolder" in edges["experiment"] and "spec" in edges["presets"]
    assert "" in edges["cli"]  # import keras_resnet as kr: the package face
    assert not any("spec" == t for t, _, _ in imports("plan"))  # the cycle that was
