"""Unit tests for the auth rules: validation, normalization, ids and secret hashing."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import pytest
from auth.customers.models import Customer, CustomerCreatedData, CustomerQuery, NewCustomer
from auth.merchants.models import (
    Business,
    NewBusiness,
    display_prefix,
    generate_secret,
    secret_mode,
)
from auth.rules import hash_secret, new_id, normalize_email, utc_now, validated
from billing_kit.errors import InvalidArgument


class TestEmail:
    def test_normalized_form_is_trimmed_and_lowercase(self) -> None:
        assert normalize_email("  Mario.Rossi@Example.COM \t") == "mario.rossi@example.com"

    def test_customer_keeps_email_as_given_but_trimmed(self) -> None:
        new = validated(
            NewCustomer, business_id="bus_1", mode="test", email=" Mario@Example.com ", name="Mario"
        )
        assert new.email == "Mario@Example.com"

    @pytest.mark.parametrize(
        "email", ["", "   ", "not-an-email", "a@", "@example.com", "a b@example.com", "a@b@c.com"]
    )
    def test_invalid_email_is_rejected_with_field_name(self, email: str) -> None:
        with pytest.raises(InvalidArgument) as exc:
            validated(NewCustomer, business_id="bus_1", mode="test", email=email, name="Mario")
        assert "email" in exc.value.message

    def test_too_long_email_is_rejected(self) -> None:
        with pytest.raises(InvalidArgument, match="email"):
            validated(
                NewCustomer,
                business_id="bus_1",
                mode="test",
                email="a" * 250 + "@example.com",
                name="Mario",
            )


class TestPhoneNumber:
    @pytest.mark.parametrize(
        ("given", "e164"),
        [
            ("+39 347 123 4567", "+393471234567"),
            ("+1 (415) 555-2671", "+14155552671"),
            ("+447911123456", "+447911123456"),
        ],
    )
    def test_valid_numbers_are_stored_as_e164(self, given: str, e164: str) -> None:
        new = validated(
            NewCustomer,
            business_id="bus_1",
            mode="live",
            email="a@example.com",
            name="A",
            phone_number=given,
        )
        assert new.phone_number == e164

    @pytest.mark.parametrize("given", ["3471234567", "+39 12", "phone", "+999 123456789"])
    def test_invalid_numbers_are_rejected(self, given: str) -> None:
        with pytest.raises(InvalidArgument, match="phone_number"):
            validated(
                NewCustomer,
                business_id="bus_1",
                mode="live",
                email="a@example.com",
                name="A",
                phone_number=given,
            )

    def test_empty_phone_means_none(self) -> None:
        new = validated(
            NewCustomer,
            business_id="bus_1",
            mode="live",
            email="a@example.com",
            name="A",
            phone_number="  ",
        )
        assert new.phone_number is None


class TestNewCustomer:
    def test_name_is_required(self) -> None:
        with pytest.raises(InvalidArgument, match="name"):
            validated(
                NewCustomer, business_id="bus_1", mode="test", email="a@example.com", name=" "
            )

    def test_mode_must_be_test_or_live(self) -> None:
        with pytest.raises(InvalidArgument, match="mode"):
            validated(NewCustomer, business_id="bus_1", mode="prod", email="a@b.co", name="A")

    def test_every_bad_field_is_named_at_once(self) -> None:
        with pytest.raises(InvalidArgument) as exc:
            validated(NewCustomer, business_id="bus_1", mode="test", email="x", name="")
        assert "email" in exc.value.message and "name" in exc.value.message


class TestNewBusiness:
    def test_defaults(self) -> None:
        new = validated(NewBusiness, name="Acme")
        assert new.locale == "en"
        assert new.branding.logo_url is None and new.branding.primary_color is None
        assert new.support_email is None and new.default_return_url is None

    def test_empty_strings_from_proto_mean_unset(self) -> None:
        new = validated(
            NewBusiness,
            name="Acme",
            branding={"logo_url": "", "primary_color": ""},
            support_email="",
            default_return_url="",
            locale="",
        )
        assert new.support_email is None
        assert new.branding.primary_color is None
        assert new.locale == "en"

    def test_branding_is_validated_and_color_uppercased(self) -> None:
        new = validated(
            NewBusiness,
            name="Acme",
            branding={"logo_url": "https://cdn.acme.test/logo.png", "primary_color": "#1a2b3c"},
            support_email="help@acme.example.com",
            default_return_url="https://acme.test/account",
            locale="it",
        )
        assert new.branding.primary_color == "#1A2B3C"
        assert new.branding.logo_url == "https://cdn.acme.test/logo.png"
        assert new.locale == "it"

    @pytest.mark.parametrize("color", ["red", "#12345", "#1234567", "123456", "#GGGGGG"])
    def test_bad_color(self, color: str) -> None:
        with pytest.raises(InvalidArgument, match="primary_color"):
            validated(NewBusiness, name="Acme", branding={"primary_color": color})

    @pytest.mark.parametrize(
        "url", ["javascript:alert(1)", "ftp://acme.test/", "acme.test/return", "https://", "/x"]
    )
    def test_return_url_must_be_http(self, url: str) -> None:
        with pytest.raises(InvalidArgument, match="default_return_url"):
            validated(NewBusiness, name="Acme", default_return_url=url)

    def test_logo_url_must_be_http(self) -> None:
        with pytest.raises(InvalidArgument, match="logo_url"):
            validated(NewBusiness, name="Acme", branding={"logo_url": "data:image/png;base64,AA"})

    @pytest.mark.parametrize("locale", ["english", "EN", "it_IT", "i"])
    def test_bad_locale(self, locale: str) -> None:
        with pytest.raises(InvalidArgument, match="locale"):
            validated(NewBusiness, name="Acme", locale=locale)

    def test_bad_support_email(self) -> None:
        with pytest.raises(InvalidArgument, match="support_email"):
            validated(NewBusiness, name="Acme", support_email="help at acme")

    def test_name_required(self) -> None:
        with pytest.raises(InvalidArgument, match="name"):
            validated(NewBusiness, name="")


class TestSecrets:
    @pytest.mark.parametrize(("mode", "prefix"), [("test", "sk_test_"), ("live", "sk_live_")])
    def test_secret_has_mode_prefix_and_32_random_bytes(self, mode: str, prefix: str) -> None:
        secret = generate_secret(mode)  # type: ignore[arg-type]
        assert secret.startswith(prefix)
        random_part = secret[len(prefix) :]
        assert len(base64.urlsafe_b64decode(random_part + "=" * (-len(random_part) % 4))) >= 32
        assert secret_mode(secret) == mode

    def test_secrets_are_unique(self) -> None:
        assert len({generate_secret("test") for _ in range(200)}) == 200

    def test_hash_is_sha256_hex_and_not_the_secret(self) -> None:
        secret = generate_secret("live")
        digest = hash_secret(secret)
        assert digest == hashlib.sha256(secret.encode()).hexdigest()
        assert secret not in digest and len(digest) == 64

    def test_display_prefix_reveals_only_four_random_chars(self) -> None:
        secret = generate_secret("test")
        assert display_prefix(secret) == secret[: len("sk_test_") + 4]

    @pytest.mark.parametrize("secret", ["", "pk_test_abc", "sk_prod_abc", "Bearer sk_test_x"])
    def test_foreign_secrets_have_no_mode(self, secret: str) -> None:
        assert secret_mode(secret) is None


class TestIdsAndTimes:
    @pytest.mark.parametrize("prefix", ["bus_", "cus_", "key_"])
    def test_prefixed_random_ids(self, prefix: str) -> None:
        ids = {new_id(prefix) for _ in range(100)}
        assert len(ids) == 100
        assert all(i.startswith(prefix) and len(i) > len(prefix) + 16 for i in ids)
        # Only the prefix carries an underscore, so ids split cleanly.
        assert all("_" not in i[len(prefix) :] and "-" not in i for i in ids)

    def test_now_is_utc_with_millisecond_precision(self) -> None:
        now = utc_now()
        assert now.tzinfo is not None and now.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert now.microsecond % 1000 == 0

    def test_naive_datetimes_from_the_driver_are_read_as_utc(self) -> None:
        business = Business(
            business_id="bus_1",
            name="Acme",
            branding={},
            created_at=datetime(2025, 1, 2, 3, 4, 5),
        )
        assert business.created_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


class TestQueriesAndEvents:
    def test_list_defaults_and_limits(self) -> None:
        query = validated(CustomerQuery, business_id="bus_1", mode="test")
        assert (query.page_size, query.page_number, query.email) == (10, 0, None)
        with pytest.raises(InvalidArgument, match="page_size"):
            validated(CustomerQuery, business_id="bus_1", mode="test", page_size=101)
        with pytest.raises(InvalidArgument, match="page_number"):
            validated(CustomerQuery, business_id="bus_1", mode="test", page_number=-1)

    def test_email_filter_is_normalized(self) -> None:
        query = validated(CustomerQuery, business_id="bus_1", mode="test", email=" A@B.com ")
        assert query.email == "a@b.com"

    def test_customer_created_data_carries_the_customer(self) -> None:
        customer = Customer(
            customer_id="cus_1",
            business_id="bus_1",
            mode="live",
            email="Mario@Example.com",
            name="Mario",
            phone_number="+393471234567",
            created_at=utc_now(),
            metadata={"crm_id": "42"},
            preferred_locale="it",
        )
        data = CustomerCreatedData.from_customer(customer).model_dump(mode="json")
        assert data["customer_id"] == "cus_1" and data["mode"] == "live"
        assert data["email"] == "Mario@Example.com" and data["phone_number"] == "+393471234567"
        assert data["metadata"] == {"crm_id": "42"}
        # notifications' recipient directory reads "locale"; Dodo's name is preferred_locale.
        assert data["preferred_locale"] == "it" and data["locale"] == "it"
        assert set(data) == {
            "customer_id",
            "business_id",
            "mode",
            "email",
            "name",
            "phone_number",
            "created_at",
            "metadata",
            "preferred_locale",
            "locale",
            "billing_details",
        }
        # Set only once the customer fills the portal's billing details page.
        assert data["billing_details"] is None


class TestValuesThatCanNeverBeMailed:
    """Issue 9.6: refused where they enter, with a message naming the field."""

    @pytest.mark.parametrize(
        "name",
        ["Acme Billing <security@bank.example> é", "Acme\r\nBcc: x@y.example.com", "Acme\x00"],
    )
    def test_business_names_used_in_headers(self, name: str) -> None:
        with pytest.raises(InvalidArgument, match="name: must not contain"):
            validated(NewBusiness, name=name)

    @pytest.mark.parametrize("name", ["Mario\r\nRossi", "Mario\x00", "Mario\nRossi"])
    def test_customer_names_with_control_characters(self, name: str) -> None:
        with pytest.raises(InvalidArgument, match="name: must not contain"):
            validated(
                NewCustomer, business_id="bus_1", mode="test", email="m@x.example.com", name=name
            )

    @pytest.mark.parametrize("tld", ["test", "example", "invalid", "localhost", "TEST"])
    def test_support_email_under_a_reserved_tld(self, tld: str) -> None:
        with pytest.raises(
            InvalidArgument, match=r"support_email: .*(reserved domain|reserved name)"
        ):
            validated(NewBusiness, name="Acme", support_email=f"help@acme.{tld}")

    def test_non_ascii_local_part(self) -> None:
        with pytest.raises(InvalidArgument, match="email: the part before @ must use ASCII"):
            validated(
                NewCustomer, business_id="bus_1", mode="test", email="mårio@x.example.com", name="M"
            )

    def test_ordinary_values_pass(self) -> None:
        business = validated(NewBusiness, name="Caffè Rossi & Figli", support_email="help@rossi.it")
        assert business.name == "Caffè Rossi & Figli"
        customer = validated(
            NewCustomer, business_id="bus_1", mode="test", email="m@mårio.example.com", name="Zoë"
        )
        assert customer.name == "Zoë"
