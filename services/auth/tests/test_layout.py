"""Auth's layout rules, read from the source with ``ast`` (no import, no I/O):

- no module of ``auth`` is over 400 lines;
- each collection auth owns is written from exactly one module: every call of
  a MongoDB write method is traced to the collection it writes through the
  module's ``self.x = db[NAME]`` / ``db[NAME]`` / ``db.name`` handles, and a
  write whose collection cannot be told is itself a failure.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "auth"
MAX_LINES = 400
WRITE_METHODS = {
    "insert_one",
    "insert_many",
    "update_one",
    "update_many",
    "find_one_and_update",
    "find_one_and_replace",
    "find_one_and_delete",
    "delete_one",
    "delete_many",
    "replace_one",
    "bulk_write",
}
OWNED = {"businesses", "api_keys", "customers", "portal_tokens", "portal_sessions", "rate_limits"}


def _modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(PACKAGE.parent)): ast.parse(path.read_text(), filename=str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def _string_constants(modules: dict[str, ast.Module]) -> dict[str, str]:
    """Every module-level ``NAME = "text"`` of the package (collection names among them)."""
    constants: dict[str, str] = {}
    for tree in modules.values():
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        constants[target.id] = node.value.value
    return constants


def _collection_of(node: ast.expr, constants: dict[str, str]) -> str | None:
    """The collection a ``db[...]``, ``db.get_collection(...)`` or ``db.name`` denotes."""
    key: ast.expr | None = None
    if isinstance(node, ast.Subscript):
        key = node.slice
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get_collection"
        and node.args
    ):
        key = node.args[0]
    elif isinstance(node, ast.Attribute) and node.attr in OWNED:
        return node.attr
    if isinstance(key, ast.Constant) and isinstance(key.value, str):
        return key.value
    if isinstance(key, ast.Name):
        return constants.get(key.id)
    return None


def _handles(tree: ast.Module, constants: dict[str, str]) -> dict[str, str]:
    """``x`` / ``self.x`` -> collection, for every handle assigned in the module."""
    handles: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            collection = _collection_of(node.value, constants)
            if collection is None:
                continue
            for target in node.targets:
                if isinstance(target, ast.Attribute):
                    handles[target.attr] = collection
                elif isinstance(target, ast.Name):
                    handles[target.id] = collection
    return handles


def _write_calls(tree: ast.Module) -> list[ast.Call]:
    """Every call of a MongoDB write method in the module, in source order."""
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in WRITE_METHODS
    ]
    return sorted(calls, key=lambda call: (call.lineno, call.col_offset))


def _written(call: ast.Call, handles: dict[str, str], constants: dict[str, str]) -> str | None:
    """The collection a write call writes, or None when it cannot be told."""
    assert isinstance(call.func, ast.Attribute)
    receiver = call.func.value
    collection = _collection_of(receiver, constants)
    if collection is None and isinstance(receiver, ast.Attribute):
        collection = handles.get(receiver.attr)
    if collection is None and isinstance(receiver, ast.Name):
        collection = handles.get(receiver.id)
    return collection


def _writes() -> tuple[dict[str, set[str]], list[str]]:
    """collection -> modules writing it, and the writes no collection could be found for."""
    modules = _modules()
    constants = _string_constants(modules)
    writers: dict[str, set[str]] = defaultdict(set)
    unknown: list[str] = []
    for name, tree in modules.items():
        handles = _handles(tree, constants)
        for call in _write_calls(tree):
            collection = _written(call, handles, constants)
            if collection is None:
                unknown.append(f"{name}:{call.lineno}")
            else:
                writers[collection].add(name)
    return writers, unknown


def test_no_module_is_over_400_lines() -> None:
    sizes = {
        str(path.relative_to(PACKAGE.parent)): len(path.read_text().splitlines())
        for path in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 10, "the scan found too few modules: it is broken"
    too_long = {name: lines for name, lines in sizes.items() if lines > MAX_LINES}
    assert too_long == {}


def test_each_collection_is_written_from_exactly_one_module() -> None:
    writers, unknown = _writes()
    assert unknown == [], "writes whose collection the scan cannot tell (name the handle)"
    assert set(writers) >= OWNED, f"no writer found for {sorted(OWNED - set(writers))}"
    several = {c: sorted(m) for c, m in writers.items() if len(m) > 1}
    assert several == {}
    assert writers["businesses"] == writers["api_keys"] == {"auth/merchants/repository.py"}
    assert writers["customers"] == {"auth/customers/repository.py"}
    for collection in ("portal_tokens", "portal_sessions", "rate_limits"):
        assert writers[collection] == {"auth/portal_access/repository.py"}


def test_the_scan_sees_a_second_writer() -> None:
    """The rule above can fail: a write through any handle form is attributed."""
    source = (
        "CUSTOMERS = 'customers'\n"
        "class X:\n"
        "    def __init__(self, db):\n"
        "        self.people = db[CUSTOMERS]\n"
        "    async def f(self, db):\n"
        "        await self.people.update_one({}, {})\n"
        "        await db['rate_limits'].delete_many({})\n"
        "        await db.portal_tokens.insert_one({})\n"
        "        await something_else.bulk_write([])\n"
    )
    tree = ast.parse(source)
    constants = _string_constants({"x": tree})
    handles = _handles(tree, constants)
    found = [_written(call, handles, constants) for call in _write_calls(tree)]
    assert found == ["customers", "rate_limits", "portal_tokens", None]
