"""The core is laid one way: spec, plan and registry know nothing of Keras.

spec.py (data and field checks), plan.py (shape walk and the shortcut
decision) and registry.py (block types and their metadata) import no Keras,
TensorFlow or JAX and none of the Keras side of the package; no module of the
builder imports another inside a function to dodge a cycle.
"""

import ast
import os
import subprocess
import sys
import textwrap

import pytest

import keras_resnet

PACKAGE = os.path.dirname(keras_resnet.__file__)
CORE = ("spec", "plan", "registry", "_runtime", "_checks", "_io")
BUILDER = ("spec", "plan", "registry", "blocks", "shortcuts", "layers", "builders",
           "flops", "report", "plots", "presets")
KERAS_SIDE = ("blocks", "shortcuts", "layers", "builders", "flops", "report", "plots",
              "presets", "cli", "train", "tuning", "compare", "export", "predict", "data")
FORBIDDEN_ROOTS = ("keras", "tensorflow", "jax", "keras_tuner")
#: Optional or heavy dependencies a function may import when it needs them.
LAZY_OK = ("yaml", "matplotlib")


def imports(module):
    """[(imported module, inside a function, under TYPE_CHECKING)] of a module."""
    tree = ast.parse(open(os.path.join(PACKAGE, module + ".py")).read())
    out = []

    def visit(node, in_function, type_checking):
        for child in ast.iter_child_nodes(node):
            fn = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            tc = type_checking or (isinstance(child, ast.If)
                                   and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.Import):
                out.extend((a.name, in_function, type_checking) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                out.append((base, in_function, type_checking))
                if base == "keras_resnet":  # from keras_resnet import presets
                    out.extend((f"keras_resnet.{a.name}", in_function, type_checking)
                               for a in child.names)
            visit(child, fn, tc)

    visit(tree, False, False)
    return out


@pytest.mark.parametrize("module", CORE)
def test_core_imports_no_keras_and_no_keras_side(module):
    for name, _, type_checking in imports(module):
        if type_checking:
            continue
        assert name.split(".")[0] not in FORBIDDEN_ROOTS, (module, name)
        assert name.removeprefix("keras_resnet.") not in KERAS_SIDE, (module, name)


@pytest.mark.parametrize("module", BUILDER)
def test_no_function_level_imports_of_the_package(module):
    for name, in_function, type_checking in imports(module):
        if in_function and not type_checking:
            assert name.split(".")[0] in LAZY_OK, (module, name)


def test_core_runs_without_keras_loaded():
    """Load spec/plan/registry without the package __init__ (which imports the
    builders, hence Keras): a spec is validated and planned, and Keras is never
    imported. (``import keras_resnet.spec`` alone runs the package __init__,
    which loads the Keras side for the public API.)"""
    code = textwrap.dedent(f"""
        import sys, types
        pkg = types.ModuleType("keras_resnet")
        pkg.__path__ = [{PACKAGE!r}]
        sys.modules["keras_resnet"] = pkg
        import keras_resnet.spec as S, keras_resnet.plan as P, keras_resnet.registry as R
        spec = S.ModelSpec(input_shape=(32, 32, 3), residual=False, shortcut="A",
                           stem=S.StemSpec(16, 3, 1, pool=None),
                           blocks=[S.BlockSpec("basic", 16, repeat=3),
                                   S.BlockSpec("basic", 32, repeat=3, strides=2)])
        plan = P.make_plan(spec)
        assert plan.shortcuts()["stage2_block1"] == "A"
        assert S.ModelSpec.from_json(spec.to_json()) == spec
        assert "basic" in R.list_blocks()
        loaded = [m for m in ("keras", "tensorflow", "jax") if m in sys.modules]
        assert not loaded, loaded
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "ok"


#: Training, the experiment and serving: a function may import a backend or an
#: optional runtime it alone needs, never a module of the package.
OPTIONAL = LAZY_OK + ("tensorflow", "jax", "onnxruntime", "ai_edge_litert", "tf2onnx",
                      "sklearn", "logging")
WORKFLOWS = sorted(
    os.path.relpath(os.path.join(root, f), PACKAGE)[:-3]
    for sub in ("training", "serving") for root, _, files in os.walk(os.path.join(PACKAGE, sub))
    for f in files if f.endswith(".py")) + ["experiment"]


@pytest.mark.parametrize("module", WORKFLOWS)
def test_workflow_modules_import_the_package_at_the_top(module):
    inner = [name for name, in_function, type_checking in imports(module)
             if in_function and not type_checking]
    assert all(name.split(".")[0] in OPTIONAL for name in inner), (module, inner)
