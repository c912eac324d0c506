"""Former home of the config schema, now :mod:`lamp.config.schema` (this path keeps working)."""
from lamp.config.bounds import (MAX_DEPTH, MAX_NODES, MAX_PARAMS_DEPTH, MAX_PARAMS_NODES, check_tree,
                                tree_problem)
from lamp.config.names import ABLATIONS, BACKENDS, TASKS, TKG_TASKS, TYPED_TASKS
from lamp.config.schema import LampSection, allowed, key_paths, raise_problems, validate_lamp

__all__ = ["LampSection", "validate_lamp", "check_tree", "tree_problem", "raise_problems", "key_paths", "allowed",
           "TASKS", "TKG_TASKS", "TYPED_TASKS", "BACKENDS", "ABLATIONS", "MAX_NODES", "MAX_DEPTH",
           "MAX_PARAMS_NODES", "MAX_PARAMS_DEPTH"]
