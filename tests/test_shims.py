"""Former import paths keep working: the shim modules re-export the very objects of the modules that
replaced them (not copies), and nothing else."""
import importlib

import pytest

SHIMS = {
    # shim module: {public name: the module that defines it}
    "lamp.typed": {"run_typed": "lamp.pipeline.core", "TYPED_PROPOSERS": "lamp.pipeline.propose"},
    "lamp.tpp.kg": {name: "lamp.tpp.kg_hawkes"
                    for name in ("KGHawkes", "RecurrencyBaseline", "feature_names", "time_aware_filter")},
}


@pytest.mark.parametrize("shim", sorted(SHIMS))
def test_shim_reexports_the_real_objects(shim):
    module = importlib.import_module(shim)
    assert sorted(module.__all__) == sorted(SHIMS[shim])
    star = {}
    exec(f"from {shim} import *", star)  # what `from shim import *` gives a script
    for name, home in SHIMS[shim].items():
        real = getattr(importlib.import_module(home), name)
        assert getattr(module, name) is real, f"{shim}.{name} is not {home}.{name}"
        assert star[name] is real
        assert name in importlib.import_module(home).__all__  # a public name where it lives, too

