"""docs/events.md is the event catalogue; these tests keep it true to the code."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "docs" / "events.md"
ROW = re.compile(r"^\| `([a-z_.]+)` \| `([\w.:]+)` \| (\w+) \| `([\w.:]+)` \| `([\w.:]+)` \|$")
# An event no service consumes yet: type, model, producer.
UNCONSUMED_ROW = re.compile(r"^\| `([a-z_.]+)` \| `([\w.:]+)` \| (\w+) \| none yet \|$")
# An UPPER_CASE constant holding something shaped like an event type.
EVENT_CONSTANT = re.compile(r'^[A-Z_]+ = "([a-z]+(?:\.[a-z_]+)+)"$', re.M)


@dataclass(frozen=True)
class Row:
    type: str
    model: str
    producer: str
    bindings: str
    consumer_model: str


def _rows() -> list[Row]:
    rows = [
        Row(*m.groups()) for line in CATALOGUE.read_text().splitlines() if (m := ROW.match(line))
    ]
    assert rows, "no catalogue rows parsed from docs/events.md"
    return rows


def _unconsumed_rows() -> list[tuple[str, str, str]]:
    lines = CATALOGUE.read_text().splitlines()
    return [m.groups() for line in lines if (m := UNCONSUMED_ROW.match(line))]  # type: ignore[misc]


def _load(path: str) -> Any:
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def _required_fields(model: type[BaseModel]) -> set[str]:
    return {name for name, field in model.model_fields.items() if field.is_required()}


@pytest.mark.parametrize("row", _rows(), ids=lambda r: f"{r.type}->{r.bindings.split('.')[0]}")
def test_each_row_matches_the_code(row: Row) -> None:
    model = _load(row.model)
    consumer_model = _load(row.consumer_model)
    assert issubclass(model, BaseModel) and issubclass(consumer_model, BaseModel)
    assert row.model.startswith(f"{row.producer}."), "the data model lives in its producer"
    assert all(f.description for f in model.model_fields.values()), (
        f"every field of {row.model} needs a description: it is the contract"
    )
    assert row.type in _load(row.bindings), f"{row.bindings} does not bind {row.type}"
    missing = _required_fields(consumer_model) - set(model.model_fields)
    assert not missing, f"{row.consumer_model} requires {missing}, which {row.model} never sends"


def test_every_emitted_event_type_is_catalogued() -> None:
    listed = {row.type for row in _rows()} | {row[0] for row in _unconsumed_rows()}
    emitted: set[str] = set()
    for source in (ROOT / "services").glob("*/src/**/*.py"):
        text = source.read_text()
        if "new_event(" in text or "models" in source.name:
            emitted |= set(EVENT_CONSTANT.findall(text))
    assert emitted, "found no event type constants: the scan is broken"
    assert emitted <= listed, f"emitted but not in docs/events.md: {sorted(emitted - listed)}"


@pytest.mark.parametrize("row", _unconsumed_rows(), ids=lambda r: r[0])
def test_each_unconsumed_row_names_a_described_model_of_its_producer(
    row: tuple[str, str, str],
) -> None:
    _type, model_path, producer = row
    model = _load(model_path)
    assert issubclass(model, BaseModel)
    assert model_path.startswith(f"{producer}."), "the data model lives in its producer"
    assert all(f.description for f in model.model_fields.values()), (
        f"every field of {model_path} needs a description: it is the contract"
    )
