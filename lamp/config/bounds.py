"""Bounds on a parsed YAML value: its expanded size (YAML aliases count each time they are used, so an
"alias bomb" of a few hundred bytes is refused at once), its depth, and cycles."""
from __future__ import annotations

from typing import Any

__all__ = ["check_tree", "tree_problem", "MAX_NODES", "MAX_DEPTH", "MAX_PARAMS_NODES", "MAX_PARAMS_DEPTH"]

MAX_NODES = 100_000        # values (mappings, lists, scalars) of a whole config once aliases are expanded
MAX_DEPTH = 64             # nesting of a whole config
MAX_PARAMS_NODES = 10_000  # proposer.params, expanded
MAX_PARAMS_DEPTH = 8       # proposer.params nesting


def check_tree(value: Any, where: str, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> str | None:
    """A problem line (``where: the value ...``) when ``value`` is out of the bounds of :func:`tree_problem`."""
    problem = tree_problem(value, max_nodes, max_depth)
    return None if problem is None else f"{where}: the value {problem}"


def tree_problem(value: Any, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> str | None:
    """What is wrong with ``value`` (parsed YAML), e.g. ``"is nested deeper than 64 levels"``: more than
    ``max_nodes`` values once aliases are expanded, nested deeper than ``max_depth``, or recursive;
    None when it is within bounds.

    Shared sub-trees (YAML anchors) are measured once and counted every time they are used, so the
    check takes time linear in the parsed document even for an alias bomb.
    """
    sizes: dict[int, tuple[int, int]] = {}  # id -> (expanded nodes, height)
    active: set[int] = set()

    class _Stop(Exception):
        pass

    def walk(node: Any, depth: int) -> tuple[int, int]:
        if not isinstance(node, (dict, list, tuple, set)):
            return 1, 0
        key = id(node)
        if key in sizes:
            count, height = sizes[key]
        else:
            if key in active:
                raise _Stop("is recursive (a YAML alias refers to a mapping or list that contains it)")
            if depth > max_depth:
                raise _Stop(f"is nested deeper than {max_depth} levels")
            active.add(key)
            count, height = 1, 0
            children = node.items() if isinstance(node, dict) else ((None, v) for v in node)
            for k, v in children:
                c, h = walk(v, depth + 1)
                count += c + (k is not None)
                height = max(height, h + 1)
                if count > max_nodes:
                    raise _Stop(f"has more than {max_nodes:,} values once YAML aliases are expanded "
                                "(an alias bomb?)")
            active.discard(key)
            sizes[key] = (count, height)
        if depth + height > max_depth:
            raise _Stop(f"is nested deeper than {max_depth} levels")
        return count, height

    try:
        count, _ = walk(value, 0)
    except _Stop as stop:
        return stop.args[0]
    if count > max_nodes:
        return f"has more than {max_nodes:,} values once YAML aliases are expanded"
    return None
