"""lamp/_core.pyi and the compiled lamp._core agree: every name of the module has a stub and every stub a
name in the module, of the same kind (a function, or an int constant), and where a function of the module
states its signature the stub has the same parameters."""
import ast
import inspect
import os

import pytest

from lamp import _core

STUBS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lamp", "_core.pyi")


def _stubs():
    """(functions, constants) of the stub file: {name: its ast node}."""
    tree = ast.parse(open(STUBS, encoding="utf-8").read())
    functions, constants = {}, {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            assert node.name not in functions, f"two stubs of {node.name}"
            functions[node.name] = node
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            assert node.target.id not in constants, f"two stubs of {node.target.id}"
            constants[node.target.id] = node
    return functions, constants


def _module_names():
    """Every name of lamp._core but the module's own dunders (one leading underscore counts: it is stubbed too)."""
    return {name for name in dir(_core) if not (name.startswith("__") and name.endswith("__"))}


def test_every_name_of_the_module_has_a_stub():
    functions, constants = _stubs()
    missing = sorted(_module_names() - set(functions) - set(constants))
    assert not missing, f"lamp._core has no stub in lamp/_core.pyi for {missing}"


def test_every_stub_names_something_in_the_module():
    functions, constants = _stubs()
    extra = sorted((set(functions) | set(constants)) - _module_names())
    assert not extra, f"lamp/_core.pyi has stubs of {extra}, which lamp._core does not define"


def test_functions_are_functions_and_constants_are_ints():
    functions, constants = _stubs()
    for name in functions:
        assert callable(getattr(_core, name)), name
    for name, node in constants.items():
        assert isinstance(node.annotation, ast.Name) and node.annotation.id == "int", f"{name} is not stubbed as int"
        value = getattr(_core, name)
        assert isinstance(value, int) and not isinstance(value, bool), (name, value)


def _stub_parameters(node):
    """(name, has a default) of a stub's parameters, in order."""
    args = node.args.posonlyargs + node.args.args
    first_default = len(args) - len(node.args.defaults)
    params = [(a.arg, i >= first_default) for i, a in enumerate(args)]
    return params + [(a.arg, d is not None) for a, d in zip(node.args.kwonlyargs, node.args.kw_defaults)]


def _stated_signature(name):
    """The signature lamp._core.<name> states in its docstring (most functions taking keywords do), or None."""
    try:
        return inspect.signature(getattr(_core, name))
    except (ValueError, AttributeError):
        return None


@pytest.mark.parametrize("name", sorted(n for n in _stubs()[0] if _stated_signature(n)))
def test_stub_parameters_match_the_stated_signature(name):
    """The stub has the parameters the function states, in the same order, with defaults in the same places."""
    stated = [(p.name, p.default is not inspect.Parameter.empty) for p in _stated_signature(name).parameters.values()]
    assert _stub_parameters(_stubs()[0][name]) == stated
