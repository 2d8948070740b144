"""One error contract: every reason a service raises is a member of the shared enum,
and every member has one HTTP status and a message in English and Italian.

The raises are found by reading the source (every ``reason=`` argument and every
``default_reason``), and the error classes by importing every module of the
services and the kit, so a new reason cannot slip in as a free string.
"""

from __future__ import annotations

import ast
import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from babel.messages.pofile import read_po
from billing_kit import errors
from billing_kit.errors import DomainError, Reason
from gateway.problems import ERROR_TABLE

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = [ROOT / "libs" / "billing_kit" / "src", *sorted((ROOT / "services").glob("*/src"))]
ITALIAN = ROOT / "services/gateway/src/gateway/locale/it/LC_MESSAGES/messages.po"

# The HTTP status each kind of refusal has, on the API and on the pages alike.
STATUS_OF_CODE = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.PERMISSION_DENIED: 404,  # a foreign resource looks missing
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAVAILABLE: 503,
}


def _python_files() -> Iterator[Path]:
    for root in SOURCE_ROOTS:
        yield from sorted(root.rglob("*.py"))


def _reason_members(node: ast.expr) -> Iterator[str | None]:
    """The Reason member names an expression can evaluate to; None for a free string."""
    if isinstance(node, ast.IfExp):
        yield from _reason_members(node.body)
        yield from _reason_members(node.orelse)
    elif isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield None
    elif (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Reason"
    ):
        yield node.attr


def _all_error_classes() -> dict[str, type[DomainError]]:
    for root in SOURCE_ROOTS:
        for package in (p for p in root.iterdir() if (p / "__init__.py").exists()):
            module = importlib.import_module(package.name)
            for info in pkgutil.walk_packages(module.__path__, f"{package.name}."):
                if not info.name.endswith("__main__"):
                    importlib.import_module(info.name)
    found: dict[str, type[DomainError]] = {}
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return found


def _raised() -> list[tuple[str, str | None, str | None]]:
    """(where, error class name or None, Reason member name or None) of every reason in code."""
    out: list[tuple[str, str | None, str | None]] = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        where_file = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                cls = node.func.id if isinstance(node.func, ast.Name) else None
                for keyword in node.keywords:
                    if keyword.arg == "reason":
                        where = f"{where_file}:{node.lineno}"
                        out += [(where, cls, m) for m in _reason_members(keyword.value)]
            elif isinstance(node, ast.ClassDef):
                for statement in node.body:
                    targets = (
                        statement.targets
                        if isinstance(statement, ast.Assign)
                        else [statement.target]
                        if isinstance(statement, ast.AnnAssign) and statement.value is not None
                        else []
                    )
                    for target in targets:
                        if isinstance(target, ast.Name) and target.id == "default_reason":
                            value = statement.value
                            assert value is not None
                            where = f"{where_file}:{statement.lineno}"
                            out += [(where, node.name, m) for m in _reason_members(value)]
    return out


def test_every_reason_any_service_raises_is_in_the_shared_enum() -> None:
    raised = _raised()
    free_strings = [where for where, _, member in raised if member is None]
    assert not free_strings, f"reasons must be billing_kit.errors.Reason members: {free_strings}"
    unknown = [(where, m) for where, _, m in raised if m and m not in Reason.__members__]
    assert not unknown, f"not in billing_kit.errors.Reason: {unknown}"
    # The scan reaches every service that raises, not just the kit (else it proves nothing).
    services = {where.split("/")[1] for where, _, _ in raised if where.startswith("services/")}
    assert {"auth", "notifications", "subscriptions", "invoicing"} <= services

    classes = _all_error_classes()
    assert {"TokenUsed", "SessionInvalid", "InvalidApiKey", "EmailTaken"} <= classes.keys()
    assert all(isinstance(cls.default_reason, Reason) for cls in classes.values())


def test_a_reason_has_one_status_whichever_error_class_raises_it() -> None:
    classes = _all_error_classes()
    pairs = [
        (where, classes[name], m)
        for where, name, m in _raised()
        if name in classes and m and classes[name].code in STATUS_OF_CODE
    ]
    pairs += [
        (cls.__name__, cls, cls.default_reason.name)
        for cls in classes.values()
        if cls.code in STATUS_OF_CODE
    ]
    mismatched = [
        (where, cls.__name__, member, ERROR_TABLE[Reason[member]].status)
        for where, cls, member in pairs
        if ERROR_TABLE[Reason[member]].status != STATUS_OF_CODE[cls.code]
    ]
    assert not mismatched, f"a reason's HTTP status disagrees with its gRPC code: {mismatched}"


@pytest.mark.parametrize("reason", list(Reason), ids=str)
def test_every_reason_has_an_http_status_and_an_english_and_italian_message(
    reason: Reason,
) -> None:
    row = ERROR_TABLE[reason]
    assert 400 <= row.status <= 599
    assert row.message.strip()
    with ITALIAN.open("rb") as fp:
        italian = {m.id: m.string for m in read_po(fp, locale="it") if m.id and not m.fuzzy}
    assert italian.get(row.message), f"no Italian for {row.message!r} ({reason})"
    assert italian[row.message] != row.message


def test_the_table_has_no_row_for_a_reason_that_does_not_exist() -> None:
    assert set(ERROR_TABLE) == set(Reason)
    assert errors.Reason.parse("NOT_A_REASON") is None
    assert errors.Reason.parse("TOKEN_USED") is Reason.TOKEN_USED
