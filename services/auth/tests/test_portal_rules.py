"""Unit tests of the portal-access rules: no I/O, except the in-memory fakes of the
profile use case (repository and email sender) where a rule lives in the service."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from auth.config import AuthSettings
from auth.customers.models import Customer
from auth.customers.profile import ProfileUpdates
from auth.email_client import EmailKind, OutgoingEmail, email_requested_event
from auth.merchants.models import Branding, Business
from auth.portal_access.models import (
    PORTAL_TOKEN_PREFIX,
    SESSION_SECRET_PREFIX,
    BaseUrls,
    PortalToken,
    Purpose,
    TokenState,
    check_next_path,
    generate_portal_token,
    generate_session_secret,
    hits_in_window,
    new_session_times,
    rate_limit_key,
    token_hash,
    token_state,
)
from auth.portal_access.use_case import PortalPolicy
from auth.rules import hash_secret
from billing_kit.clock import TestClock
from billing_kit.errors import InvalidArgument
from billing_kit.sealing import Sealer, new_sealing_key
from pydantic import ValidationError

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
BUS = "bus_abc"


class TestTokens:
    def test_tokens_are_prefixed_and_carry_at_least_128_random_bits(self) -> None:
        token = generate_portal_token()
        assert token.startswith("cpt_")
        # urlsafe base64 of 32 bytes: 43 characters = 256 bits.
        assert len(token) - len(PORTAL_TOKEN_PREFIX) >= 22
        assert generate_session_secret().startswith("cps_")
        assert len({generate_portal_token() for _ in range(1000)}) == 1000

    def test_stored_form_is_the_sha256_of_the_token(self) -> None:
        token = generate_portal_token()
        hashed = token_hash(token)
        assert hashed == hash_secret(token)
        assert hashed is not None and len(hashed) == 64 and token not in hashed

    @pytest.mark.parametrize(
        "given",
        ["", "cpt_", "cps_" + "a" * 43, "cpt_abc def", "cpt_" + "a" * 200, "cpt_../x", "abc"],
    )
    def test_malformed_tokens_have_no_hash(self, given: str) -> None:
        assert token_hash(given) is None

    def test_session_secrets_are_checked_against_their_own_prefix(self) -> None:
        secret = generate_session_secret()
        assert token_hash(secret, SESSION_SECRET_PREFIX) == hash_secret(secret)
        assert token_hash(secret) is None  # a session secret is not a link token


def _token(**overrides: Any) -> PortalToken:
    fields: dict[str, Any] = {
        "token_id": "ptk_1",
        "purpose": Purpose.SIGN_IN,
        "business_id": BUS,
        "mode": "test",
        "customer_id": "cus_1",
        "created_at": NOW,
        "expires_at": NOW + timedelta(minutes=15),
    }
    fields.update(overrides)
    return PortalToken(**fields)


class TestTokenState:
    def test_valid_until_the_expiry_instant(self) -> None:
        token = _token()
        assert token_state(token, NOW) is TokenState.VALID
        assert token_state(token, NOW + timedelta(minutes=14, seconds=59)) is TokenState.VALID
        assert token_state(token, NOW + timedelta(minutes=15)) is TokenState.EXPIRED

    def test_used_is_reported_even_after_expiry(self) -> None:
        token = _token(used_at=NOW + timedelta(minutes=1))
        assert token_state(token, NOW + timedelta(minutes=2)) is TokenState.USED
        assert token_state(token, NOW + timedelta(days=2)) is TokenState.USED

    def test_missing_is_unknown(self) -> None:
        assert token_state(None, NOW) is TokenState.UNKNOWN

    def test_only_emailed_sign_in_links_start_a_session_through_consume_token(self) -> None:
        # Email-change tokens only confirm an address; hand-offs have their own RPC.
        assert not Purpose.EMAIL_CHANGE.starts_session
        assert not Purpose.HANDOFF.starts_session
        assert {p for p in Purpose if p.starts_session} == {
            Purpose.SIGN_IN,
            Purpose.MAGIC_LINK,
            Purpose.UNIFIED_SIGN_IN,
        }


class TestNextPath:
    @pytest.mark.parametrize(
        "given",
        [
            f"/b/{BUS}/",
            f"/b/{BUS}/subscriptions",
            f"/b/{BUS}/subscriptions/sub_1/payment-method?from=email",
            f"/b/{BUS}/profile",
        ],
    )
    def test_paths_inside_the_business_portal_pass(self, given: str) -> None:
        assert check_next_path(given, BUS) == given

    @pytest.mark.parametrize("given", [None, "", "   "])
    def test_absent_is_none(self, given: str | None) -> None:
        assert check_next_path(given, BUS) is None

    @pytest.mark.parametrize(
        "given",
        [
            "https://evil.test/b/bus_abc/",
            "//evil.test/b/bus_abc/",
            "/b/bus_other/subscriptions",
            "/b/bus_abcdef/",  # a different business sharing the prefix
            f"/b/{BUS}",  # not inside the area
            f"/b/{BUS}//evil.test",
            f"/b/{BUS}/../bus_other/",
            f"/b/{BUS}/%2e%2e/bus_other/",
            f"/b/{BUS}/x%2fy",
            f"/b/{BUS}/\\evil.test",
            "javascript:alert(1)",
            f"/b/{BUS}/<script>",
            f"/b/{BUS}/ spaced",
            f"/b/{BUS}/" + "a" * 600,
        ],
    )
    def test_anything_else_is_refused(self, given: str) -> None:
        with pytest.raises(ValueError):
            check_next_path(given, BUS)


class TestRateWindows:
    def test_hits_older_than_the_window_do_not_count(self) -> None:
        hits = [NOW - timedelta(seconds=901), NOW - timedelta(seconds=899), NOW]
        assert hits_in_window(hits, NOW, 900) == 2

    def test_a_burst_across_a_clock_boundary_is_still_one_window(self) -> None:
        # Ten hits around 12:15:00 are within 15 minutes of each other: all count.
        boundary = NOW + timedelta(minutes=15)
        hits = [boundary + timedelta(seconds=s) for s in range(-5, 5)]
        assert hits_in_window(hits, hits[-1], 900) == 10

    def test_naive_datetimes_from_the_driver_are_read_as_utc(self) -> None:
        naive = (NOW - timedelta(seconds=10)).replace(tzinfo=None)
        assert hits_in_window([naive], NOW, 900) == 1

    def test_counter_ids_do_not_contain_the_email(self) -> None:
        key = rate_limit_key("subject", "mario@example.test")
        assert "mario" not in key and "@" not in key
        assert key != rate_limit_key("client", "mario@example.test")


class TestSessionsAndClock:
    def test_idle_never_outlives_absolute_and_a_cap_shortens_both(self) -> None:
        idle, absolute = new_session_times(
            NOW, idle_seconds=3600, absolute_seconds=43200, absolute_cap=None
        )
        assert (idle, absolute) == (NOW + timedelta(hours=1), NOW + timedelta(hours=12))
        cap = NOW + timedelta(minutes=30)
        idle, absolute = new_session_times(
            NOW, idle_seconds=3600, absolute_seconds=43200, absolute_cap=cap
        )
        assert idle == absolute == cap


class TestLinksAndSettings:
    def test_links_come_from_the_configured_bases(self) -> None:
        urls = BaseUrls(
            live="https://p.test/live", test="https://p.test/test", unified="https://p.test/all"
        )
        assert urls.token_link(Purpose.SIGN_IN, "test", "cpt_x") == "https://p.test/test/link/cpt_x"
        assert (
            urls.token_link(Purpose.MAGIC_LINK, "live", "cpt_x") == "https://p.test/live/link/cpt_x"
        )
        assert (
            urls.token_link(Purpose.UNIFIED_SIGN_IN, "live", "cpt_x")
            == "https://p.test/all/link/cpt_x"
        )
        assert (
            urls.token_link(Purpose.EMAIL_CHANGE, "test", "cpt_x")
            == "https://p.test/test/email-change/cpt_x"
        )
        assert (
            urls.token_link(Purpose.HANDOFF, "live", "cpt_x") == "https://p.test/live/handoff/cpt_x"
        )
        assert urls.static_link(BUS, "live") == f"https://p.test/live/login/{BUS}"

    def test_settings_defaults_and_trailing_slashes(self) -> None:
        settings = AuthSettings(portal_live_base_url="https://portal.test/live/")
        assert settings.portal_live_base_url == "https://portal.test/live"
        assert settings.portal_test_base_url == "http://localhost:8080/test"
        assert settings.sign_in_link_ttl_seconds == 900
        assert settings.session_idle_seconds == 3600
        assert settings.session_absolute_seconds == 43200
        assert settings.handoff_ttl_seconds == 120
        assert settings.session_touch_seconds == 60
        assert settings.business_cache_seconds == 30

    def test_test_clock_is_refused_in_production(self) -> None:
        with pytest.raises(ValidationError, match="test_clock_enabled"):
            AuthSettings(
                environment="production",
                mongodb_url="mongodb://db/",
                amqp_url="amqp://mq/",
                test_clock_enabled=True,
            )

    @pytest.mark.parametrize("bad", ["ftp://x.test", "localhost:8080/live", "https://x.test/?a=1"])
    def test_bad_base_urls_are_refused(self, bad: str) -> None:
        with pytest.raises(ValidationError):
            AuthSettings(unified_base_url=bad)

    def test_email_request_carries_branding_and_only_a_sealed_link(self) -> None:
        business = Business(
            business_id=BUS,
            name="Acme",
            branding=Branding(logo_url="https://acme.test/l.png", primary_color="#112233"),
            support_email="help@acme.example.com",
            created_at=NOW,
        )
        email = OutgoingEmail(
            kind=EmailKind.SIGN_IN_LINK,
            to="mario@example.test",
            locale="it",
            mode="test",
            email_key="ptk_1",
            business=business,
            link="https://p.test/test/link/cpt_secret",
            link_expires_minutes=15,
        )
        sealer = Sealer(new_sealing_key())
        event = email_requested_event(email, sealer, source="auth")
        data = event.data
        assert event.type == "email.requested" and event.subject == "ptk_1"
        assert data["business_name"] == "Acme" and data["primary_color"] == "#112233"
        assert data["business_id"] == BUS and data["mode"] == "test"
        assert data["email_key"] == "ptk_1" and data["template"] == "sign_in_link"
        # Only ciphertext travels; the reader with the key gets the link back.
        assert "cpt_secret" not in event.model_dump_json()
        assert sealer.open(data["sealed_link"]) == "https://p.test/test/link/cpt_secret"
        assert "cpt_secret" not in repr(email) and "mario" not in repr(email)


# --- the profile rule (E.164, no change -> no event) with in-memory fakes -------------------


class FakeCustomers:
    """The customer store in memory: the rule under test is the service's, not Mongo's."""

    def __init__(self, customer: Customer) -> None:
        self.customer = customer

    async def get(
        self, business_id: str, mode: str, customer_id: str, *, txn: Any = None
    ) -> Customer | None:
        c = self.customer
        match = (c.business_id, c.mode, c.customer_id) == (business_id, mode, customer_id)
        return c if match else None

    async def update(
        self, business_id: str, mode: str, customer_id: str, changes: dict[str, Any], *, txn: Any
    ) -> Customer:
        self.customer = self.customer.model_copy(update=changes)
        return self.customer


class FakeUnitOfWork:
    """Runs the work at once and records what it wrote to the outbox and audit log."""

    def __init__(self) -> None:
        self.events: list[Any] = []
        self.audits: list[dict[str, Any]] = []

    async def run(self, work: Any) -> Any:
        return await work(None)

    async def add_event(self, event: Any, txn: Any) -> None:
        self.events.append(event)

    async def audit(self, txn: Any, **entry: Any) -> None:
        self.audits.append(entry)


class NoOutcomes:
    async def wait(self, **_: Any) -> str:
        raise AssertionError("no email expected")


class Fakes:
    def __init__(self, customer: Customer) -> None:
        self.store = FakeCustomers(customer)
        self.uow = FakeUnitOfWork()

    @property
    def customer(self) -> Customer:
        return self.store.customer

    @property
    def events(self) -> list[Any]:
        return self.uow.events


def _profile_service(customer: Customer) -> tuple[ProfileUpdates, Fakes]:
    fakes = Fakes(customer)
    policy = PortalPolicy(base_urls=BaseUrls(live="http://l", test="http://t", unified="http://u"))
    service = ProfileUpdates(
        merchants=None,  # type: ignore[arg-type]
        businesses=None,  # type: ignore[arg-type]
        customers=fakes.store,  # type: ignore[arg-type]
        portal=None,  # type: ignore[arg-type]
        uow=fakes.uow,  # type: ignore[arg-type]
        policy=policy,
        sealer=Sealer(new_sealing_key()),
        outcomes=NoOutcomes(),  # type: ignore[arg-type]
        clock=TestClock(),
    )
    return service, fakes


CUSTOMER = Customer(
    customer_id="cus_1",
    business_id=BUS,
    mode="test",
    email="mario@example.test",
    name="Mario Rossi",
    phone_number=None,
    created_at=NOW,
)


class TestProfileRules:
    async def test_phone_is_stored_in_e164_and_the_change_emits_one_event(self) -> None:
        service, repo = _profile_service(CUSTOMER)
        updated = await service.update_profile(
            business_id=BUS, mode="test", customer_id="cus_1", phone_number="+39 347 123 4567"
        )
        assert updated.phone_number == "+393471234567"
        assert [e.type for e in repo.events] == ["customer.updated"]
        assert repo.events[0].data["changed_fields"] == ["phone_number"]

    async def test_same_values_change_nothing_and_emit_nothing(self) -> None:
        service, repo = _profile_service(CUSTOMER)
        same = await service.update_profile(
            business_id=BUS, mode="test", customer_id="cus_1", name="  Mario Rossi "
        )
        assert same == CUSTOMER and repo.events == []

    @pytest.mark.parametrize(
        ("fields", "named"),
        [
            ({"phone_number": "3471234567"}, "phone_number"),
            ({"phone_number": "+39 12"}, "phone_number"),
            ({"name": "   "}, "name"),
            ({"name": "x" * 201}, "name"),
        ],
    )
    async def test_bad_values_are_refused_and_nothing_changes(
        self, fields: dict[str, str], named: str
    ) -> None:
        service, repo = _profile_service(CUSTOMER)
        with pytest.raises(InvalidArgument, match=named):
            await service.update_profile(
                business_id=BUS, mode="test", customer_id="cus_1", **fields
            )
        assert repo.customer == CUSTOMER and repo.events == []

    async def test_empty_phone_clears_it(self) -> None:
        service, repo = _profile_service(
            CUSTOMER.model_copy(update={"phone_number": "+393471234567"})
        )
        updated = await service.update_profile(
            business_id=BUS, mode="test", customer_id="cus_1", phone_number=""
        )
        assert updated.phone_number is None
        assert repo.events[0].data["phone_number"] is None
