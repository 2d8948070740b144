"""What schemathesis needs to know beyond the document (loaded via SCHEMATHESIS_HOOKS).

Two facts the OpenAPI document states in words rather than in JSON Schema:

- ``phone-e164``: a valid phone number of its country (libphonenumber), which
  no regular expression says; generated here from libphonenumber's own
  example numbers.
- ``next`` must name the API key's own business (``/b/{business_id}/…``), which
  a static document cannot know; valid (positive) cases get this run's business.
"""

from __future__ import annotations

import os
import re
from typing import Any

import phonenumbers
import schemathesis
from billing_kit.field_rules import NEXT_PATH_MAX_LENGTH
from hypothesis import strategies as st

BUSINESS_ID = os.environ["CONTRACT_BUSINESS_ID"]
_REGIONS = ("IT", "US", "GB", "DE", "FR", "ES", "BR", "IN", "JP", "AU", "CH", "SE")
_KINDS = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE)


def _examples() -> list[str]:
    numbers = []
    for region in _REGIONS:
        for kind in _KINDS:
            number = phonenumbers.example_number_for_type(region, kind)
            if number is not None:
                numbers.append(
                    phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
                )
    return numbers


schemathesis.openapi.format("phone-e164", st.sampled_from(_examples()))

_BUSINESS_PREFIX = re.compile(r"^/b/[A-Za-z0-9_-]{1,64}/")


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """Point a valid case's ``next`` into this run's own business portal."""
    meta = case.meta
    positive = meta is not None and meta.generation.mode.is_positive
    query = case.query
    if positive and isinstance(query, dict) and isinstance(query.get("next"), str):
        own = _BUSINESS_PREFIX.sub(f"/b/{BUSINESS_ID}/", query["next"], count=1)
        # Any prefix of a valid path is valid: trim what the longer id pushed past the limit.
        query["next"] = own[:NEXT_PATH_MAX_LENGTH]
    return case
