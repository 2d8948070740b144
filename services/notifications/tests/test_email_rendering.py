"""Unit tests of the email templates: every template in English and Italian."""

from __future__ import annotations

import email
import email.policy
import email.utils
import html
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from notifications.email.models import (
    BillingDetails,
    Branding,
    EmailRequest,
    EmailTemplate,
    resolve_locale,
)
from notifications.email.rendering import EmailRenderer, button_text_color
from notifications.email.smtp import SmtpConfig, SmtpSender
from pydantic import ValidationError

LINK = "https://portal.example.com/login/bus_1/confirm?token=cpt_SECRET123&next=/home"
# The Italian copy uses the typographic apostrophe, as the product text does.
APOS = "\u2019"
LINK_TEMPLATES = [t for t in EmailTemplate if t.has_link]

# Per template, a phrase only the Italian catalog provides (checked in subject or body).
ITALIAN_WORDING: dict[EmailTemplate, tuple[str, str]] = {
    EmailTemplate.SIGN_IN_LINK: ("Il tuo link di accesso a Acme Studio", "Accedi al portale"),
    EmailTemplate.NO_ACCOUNT_FOUND: (
        "Richiesta di accesso a Acme Studio",
        "non abbiamo trovato acquisti presso Acme Studio",
    ),
    EmailTemplate.PORTAL_LINK: (
        "Il tuo link al Portale Clienti di Acme Studio",
        "Apri il Portale Clienti",
    ),
    EmailTemplate.EMAIL_CHANGE_VERIFY: (
        "Conferma il tuo nuovo indirizzo email per Acme Studio",
        "Conferma indirizzo email",
    ),
    EmailTemplate.EMAIL_CHANGE_NOTICE: (
        f"Richiesta di modifica dell{APOS}email del tuo account Acme Studio",
        "La modifica avrà effetto solo dopo la conferma del nuovo indirizzo",
    ),
    EmailTemplate.EMAIL_IN_USE_NOTICE: (
        "Qualcuno ha provato a usare il tuo indirizzo email presso Acme Studio",
        "quindi non è stato modificato nulla",
    ),
    EmailTemplate.UNIFIED_SIGN_IN_LINK: (
        "Il tuo link di accesso a tutti i tuoi acquisti",
        "chiavi di licenza",
    ),
    EmailTemplate.UNIFIED_NO_ACCOUNT_FOUND: (
        "Richiesta di accesso ai tuoi acquisti",
        "non abbiamo trovato acquisti per questo indirizzo",
    ),
    EmailTemplate.PAYMENT_RECEIPT: (
        "La tua ricevuta INV-000042 da Acme Studio",
        "Abbiamo ricevuto il tuo pagamento di 356,20\xa0€",
    ),
    EmailTemplate.SUBSCRIPTION_ON_HOLD: (
        "Azione richiesta: il pagamento a Acme Studio non è andato a buon fine",
        "Importo dovuto: 356,20\xa0€",
    ),
    EmailTemplate.SUBSCRIPTION_REACTIVATED: (
        "Il tuo abbonamento Acme Studio è di nuovo attivo",
        "Si rinnova il 24 dicembre 2026.",
    ),
    EmailTemplate.SUBSCRIPTION_CANCELLED: (
        "Il tuo abbonamento Acme Studio è stato annullato",
        "Abbonamento: Pro Plan",
    ),
    EmailTemplate.CANCELLATION_SCHEDULED: (
        "Il tuo abbonamento Acme Studio sta per terminare",
        f"mantieni l{APOS}accesso fino al 24 dicembre 2026",
    ),
    EmailTemplate.RENEWAL_REMINDER: (
        "Il tuo abbonamento Acme Studio si rinnova il 24 dicembre 2026",
        "verranno addebitati 356,20\xa0€",
    ),
    EmailTemplate.LICENSE_KEY_DELIVERED: (
        "La tua chiave di licenza per Pro Plan",
        "Attivazioni: Fino a 3 dispositivi",
    ),
}
ENGLISH_WORDING: dict[EmailTemplate, tuple[str, str]] = {
    EmailTemplate.SIGN_IN_LINK: ("Your sign-in link for Acme Studio", "Sign in to the portal"),
    EmailTemplate.NO_ACCOUNT_FOUND: (
        "Sign-in request for Acme Studio",
        "we found no purchases at Acme Studio",
    ),
    EmailTemplate.PORTAL_LINK: (
        "Your customer portal link for Acme Studio",
        "Open the customer portal",
    ),
    EmailTemplate.EMAIL_CHANGE_VERIFY: (
        "Confirm your new email address for Acme Studio",
        "Confirm email address",
    ),
    EmailTemplate.EMAIL_CHANGE_NOTICE: (
        "Email change requested for your Acme Studio account",
        "only after the new address is confirmed",
    ),
    EmailTemplate.EMAIL_IN_USE_NOTICE: (
        "Someone tried to use your email address at Acme Studio",
        "so nothing was changed",
    ),
    EmailTemplate.UNIFIED_SIGN_IN_LINK: (
        "Your sign-in link to all your purchases",
        "license keys",
    ),
    EmailTemplate.UNIFIED_NO_ACCOUNT_FOUND: (
        "Sign-in request for your purchases",
        "we found no purchases for it",
    ),
    EmailTemplate.PAYMENT_RECEIPT: (
        "Your receipt INV-000042 from Acme Studio",
        "We received your payment of €356.20",
    ),
    EmailTemplate.SUBSCRIPTION_ON_HOLD: (
        "Action needed: your Acme Studio payment failed",
        "Amount due: €356.20",
    ),
    EmailTemplate.SUBSCRIPTION_REACTIVATED: (
        "Your Acme Studio subscription is active again",
        "It renews on December 24, 2026.",
    ),
    EmailTemplate.SUBSCRIPTION_CANCELLED: (
        "Your Acme Studio subscription has been cancelled",
        "Subscription: Pro Plan",
    ),
    EmailTemplate.CANCELLATION_SCHEDULED: (
        "Your Acme Studio subscription is set to end",
        "you keep access until December 24, 2026",
    ),
    EmailTemplate.RENEWAL_REMINDER: (
        "Your Acme Studio subscription renews on December 24, 2026",
        "will be charged €356.20",
    ),
    EmailTemplate.LICENSE_KEY_DELIVERED: (
        "Your license key for Pro Plan",
        "Activations: Up to 3 devices",
    ),
}
BILLING = BillingDetails(
    customer_id="cus_1",
    subscription_id="sub_1",
    product_name="Pro Plan",
    amount=35620,
    currency="EUR",
    date=datetime(2026, 12, 24, 9, 30, tzinfo=UTC),
    invoice_id="inv_1",
    invoice_number="INV-000042",
)
LICENSE_KEY = "ABCDE-FGHIJ-KLMNO-PQRST-UVWXY-Z2345"
ACTIVATION_MESSAGE = "Open Settings > License and paste the key."
LICENSE = BillingDetails(
    customer_id="cus_1",
    product_name="Pro Plan",
    date=datetime(2027, 12, 24, 9, 30, tzinfo=UTC),
    activations_limit=3,
    activation_message=ACTIVATION_MESSAGE,
)
EXPIRY = {
    "en": "This link expires in 15 minutes",
    "it": "Il link scade tra 15 minuti",
}


@pytest.fixture(scope="module")
def renderer() -> EmailRenderer:
    return EmailRenderer(default_sender_name="Customer Portal")


def make_request(template: EmailTemplate, **overrides: Any) -> EmailRequest:
    fields: dict[str, Any] = {
        "template": template,
        "to": "ada@example.com",
        "locale": "en",
        "business_id": "bus_1",
        "mode": "live",
        "branding": Branding(
            business_name="Acme Studio",
            logo_url="https://cdn.example.com/acme.png",
            primary_color="#0A7B83",
            support_email="help@acme.example.com",
        ),
        "customer_name": "Ada",
    }
    if template.has_link:
        fields.update(link=LINK, link_expires_minutes=15)
    if template.is_billing:
        fields.update(billing=BILLING)
    if template is EmailTemplate.LICENSE_KEY_DELIVERED:
        fields.update(billing=LICENSE, license_key=LICENSE_KEY)
    fields.update(overrides)
    return EmailRequest(**fields)


class TestEveryTemplate:
    @pytest.mark.parametrize("locale", ["en", "it"])
    @pytest.mark.parametrize("template", list(EmailTemplate))
    def test_wording_branding_and_link(
        self, renderer: EmailRenderer, template: EmailTemplate, locale: str
    ) -> None:
        email = renderer.render(make_request(template, locale=locale))
        subject, phrase = (ITALIAN_WORDING if locale == "it" else ENGLISH_WORDING)[template]

        assert email.locale == locale
        assert email.subject == subject
        assert phrase in email.text
        # The HTML shows the facts as table cells, not "Label: value".
        assert phrase.split(": ")[-1] in html.unescape(email.html)
        assert f'<html lang="{locale}">' in email.html
        assert ("Ciao Ada," if locale == "it" else "Hello Ada,") in email.text
        if template.per_business:
            assert "Acme Studio" in email.text
            assert "Acme Studio" in email.html
        assert 'src="https://cdn.example.com/acme.png"' in email.html
        assert "border-top:4px solid #0A7B83" in email.html
        assert "help@acme.example.com" in email.text
        assert 'href="mailto:help@acme.example.com"' in email.html
        assert "<script" not in email.html

        if template.has_link:
            assert LINK in email.text
            # In HTML the "&" of the query string is an entity, as it must be in an attribute.
            assert f'href="{html.escape(LINK)}"' in email.html
            assert "background-color:#0A7B83;color:#FFFFFF" in email.html  # the button
            assert EXPIRY[locale] in email.text
            assert EXPIRY[locale] in email.html
        else:
            assert "https://portal.example.com" not in email.text
            assert "https://portal.example.com" not in email.html
            assert EXPIRY[locale] not in email.text

    @pytest.mark.parametrize("template", list(EmailTemplate))
    def test_every_italian_body_is_translated(
        self, renderer: EmailRenderer, template: EmailTemplate
    ) -> None:
        english = renderer.render(make_request(template, locale="en"))
        italian = renderer.render(make_request(template, locale="it"))
        english_lines = {line for line in english.text.splitlines() if len(line) > 20}
        # Only the link, names, addresses and the key email's data (the key, the
        # merchant's activation message) may be the same in both languages.
        shared = english_lines & set(italian.text.splitlines())
        assert shared <= {LINK, f"    {LICENSE_KEY}", ACTIVATION_MESSAGE}, shared


class TestBillingEmails:
    def test_billing_templates_need_their_details(self) -> None:
        with pytest.raises(ValidationError, match="billing is required"):
            make_request(EmailTemplate.PAYMENT_RECEIPT, billing=None)

    @pytest.mark.parametrize(
        ("locale", "amount", "day"),
        [("en", "€356.20", "December 24, 2026"), ("it", "356,20\xa0€", "24 dicembre 2026")],
    )
    def test_amounts_and_dates_follow_the_locale(
        self, renderer: EmailRenderer, locale: str, amount: str, day: str
    ) -> None:
        email = renderer.render(make_request(EmailTemplate.RENEWAL_REMINDER, locale=locale))
        assert amount in email.text and amount in html.unescape(email.html)
        assert day in email.subject and day in email.text

    def test_product_name_is_escaped_in_html(self, renderer: EmailRenderer) -> None:
        details = BILLING.model_copy(update={"product_name": "<b>Pro</b>"})
        email = renderer.render(make_request(EmailTemplate.SUBSCRIPTION_CANCELLED, billing=details))
        assert "<b>Pro</b>" not in email.html
        assert "&lt;b&gt;Pro&lt;/b&gt;" in email.html
        assert "<b>Pro</b>" in email.text

    def test_currency_without_decimals(self, renderer: EmailRenderer) -> None:
        details = BILLING.model_copy(update={"amount": 1200, "currency": "JPY"})
        email = renderer.render(make_request(EmailTemplate.RENEWAL_REMINDER, billing=details))
        assert "¥1,200" in email.text


class TestNoAccountFound:
    @pytest.mark.parametrize(
        ("locale", "says"),
        [
            ("en", ["no purchases at Acme Studio", "the email address you used at purchase"]),
            (
                "it",
                [
                    "non abbiamo trovato acquisti presso Acme Studio",
                    f"l{APOS}email utilizzata per l{APOS}acquisto",
                ],
            ),
        ],
    )
    def test_says_no_purchases_and_to_use_the_purchase_email(
        self, renderer: EmailRenderer, locale: str, says: list[str]
    ) -> None:
        email = renderer.render(make_request(EmailTemplate.NO_ACCOUNT_FOUND, locale=locale))
        for phrase in says:
            assert phrase in email.text
            assert phrase in html.unescape(email.html)
        # No way in: the only link is the support mailto.
        assert email.html.count("<a ") == 1

    def test_refuses_a_link(self) -> None:
        with pytest.raises(ValidationError, match="no_account_found carries no link"):
            make_request(EmailTemplate.NO_ACCOUNT_FOUND, link=LINK, link_expires_minutes=15)


class TestEscaping:
    NAME = 'Evil <script>alert("x")</script> & Co'

    def test_business_name_stays_text_in_html(self, renderer: EmailRenderer) -> None:
        branding = Branding(business_name=self.NAME, primary_color="#112233")
        email = renderer.render(make_request(EmailTemplate.SIGN_IN_LINK, branding=branding))
        assert "<script>" not in email.html
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in email.html
        # The plain-text part shows the name as typed, not as entities.
        assert self.NAME in email.text
        assert "&lt;" not in email.text
        assert email.subject == f"Your sign-in link for {self.NAME}"

    def test_customer_name_is_escaped(self, renderer: EmailRenderer) -> None:
        email = renderer.render(
            make_request(EmailTemplate.PORTAL_LINK, customer_name="<b>Ada</b>", locale="it")
        )
        assert "Ciao &lt;b&gt;Ada&lt;/b&gt;," in email.html
        assert "Ciao <b>Ada</b>," in email.text

    @pytest.mark.parametrize(
        "color", ["red", "#12345", "#1234567", "#12345G", "#123456;background:url(x)", "123456"]
    )
    def test_accent_colour_must_be_hex(self, color: str) -> None:
        with pytest.raises(ValidationError, match="RRGGBB"):
            Branding(business_name="Acme", primary_color=color)

    def test_default_accent_when_none_given(self, renderer: EmailRenderer) -> None:
        email = renderer.render(
            make_request(EmailTemplate.SIGN_IN_LINK, branding=Branding(business_name="Acme"))
        )
        assert "background-color:#2563EB" in email.html
        assert "<img" not in email.html

    @pytest.mark.parametrize("link", ["javascript:alert(1)", "portal.example.com/x", "ftp://x/y"])
    def test_link_must_be_a_web_url_and_is_not_echoed(self, link: str) -> None:
        with pytest.raises(ValidationError) as caught:
            make_request(EmailTemplate.SIGN_IN_LINK, link=link)
        assert "absolute http(s) URL" in str(caught.value)

    def test_logo_must_be_a_web_url(self) -> None:
        with pytest.raises(ValidationError, match="absolute http"):
            Branding(business_name="Acme", logo_url="javascript:alert(1)")

    def test_header_injection_in_business_name_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="control characters"):
            Branding(business_name="Acme\r\nBcc: victim@example.com")


class TestRequestRules:
    @pytest.mark.parametrize("template", LINK_TEMPLATES)
    def test_link_templates_need_a_link_and_an_expiry(self, template: EmailTemplate) -> None:
        with pytest.raises(ValidationError, match="link is required"):
            make_request(template, link="", link_expires_minutes=0)
        with pytest.raises(ValidationError, match="link_expires_minutes must be positive"):
            make_request(template, link_expires_minutes=0)

    def test_business_emails_need_the_business(self) -> None:
        with pytest.raises(ValidationError, match="business_id is required"):
            make_request(EmailTemplate.SIGN_IN_LINK, business_id="")
        with pytest.raises(ValidationError, match="business_name is required"):
            make_request(EmailTemplate.SIGN_IN_LINK, branding=Branding())

    def test_unified_email_uses_the_platform_name(self, renderer: EmailRenderer) -> None:
        email = renderer.render(
            make_request(EmailTemplate.UNIFIED_SIGN_IN_LINK, business_id="", branding=Branding())
        )
        assert "Sent by Customer Portal through its customer portal." in email.text


class TestLocaleAndExpiry:
    @pytest.mark.parametrize(
        ("tag", "expected"),
        [
            ("it", "it"),
            ("it-IT", "it"),
            ("it_CH", "it"),
            ("IT", "it"),
            ("en-GB", "en"),
            ("de", "en"),
            ("", "en"),
            (None, "en"),
        ],
    )
    def test_locale_falls_back_to_english(self, tag: str | None, expected: str) -> None:
        assert resolve_locale(tag) == expected

    def test_unknown_locale_renders_english(self, renderer: EmailRenderer) -> None:
        email = renderer.render(make_request(EmailTemplate.SIGN_IN_LINK, locale="de-DE"))
        assert email.locale == "en"
        assert email.subject == "Your sign-in link for Acme Studio"

    @pytest.mark.parametrize(
        ("minutes", "locale", "expected"),
        [
            (1, "en", "This link expires in 1 minute and"),
            (1, "it", "Il link scade tra 1 minuto e"),
            (90, "en", "This link expires in 90 minutes and"),
            (1440, "en", "This link expires in 24 hours and"),
            (1440, "it", "Il link scade tra 24 ore e"),
        ],
    )
    def test_expiry_wording(
        self, renderer: EmailRenderer, minutes: int, locale: str, expected: str
    ) -> None:
        email = renderer.render(
            make_request(EmailTemplate.PORTAL_LINK, locale=locale, link_expires_minutes=minutes)
        )
        assert expected in email.text

    def test_test_mode_is_flagged(self, renderer: EmailRenderer) -> None:
        email = renderer.render(make_request(EmailTemplate.SIGN_IN_LINK, mode="test", locale="it"))
        assert "Modalità test" in email.text
        live = renderer.render(make_request(EmailTemplate.SIGN_IN_LINK, mode="live", locale="it"))
        assert "Modalità test" not in live.text


@pytest.mark.parametrize(
    ("accent", "text"),
    [
        ("#FFFFFF", "#111827"),
        ("#FFCC00", "#111827"),
        ("#0A2540", "#FFFFFF"),
        ("#777777", "#000000"),
    ],
)
def test_button_text_reads_on_the_accent(accent: str, text: str) -> None:
    # #777777 is the mid-tone where neither white nor soft dark reaches 4.5:1.
    assert button_text_color(accent) == text


class TestFromHeaderSpoofing:
    """Issue 9.2: a business name that looks like an address stays a display name."""

    def test_spoofing_name_keeps_the_platform_address(self) -> None:
        name = "Acme Billing <security@bank.example> é"
        sender = SmtpSender(
            SmtpConfig(host="127.0.0.1", port=25, mail_from="Portal <no-reply@portal.example>")
        )
        request = make_request(EmailTemplate.NO_ACCOUNT_FOUND, locale="en").model_copy(
            update={"branding": Branding(business_name=name)}
        )
        renderer = EmailRenderer(default_sender_name="Portal")
        message = sender.build_message(
            request, renderer.render(request), email_id="eml_1", now=datetime.now(UTC)
        )

        parsed = email.message_from_bytes(message.as_bytes(), policy=email.policy.default)
        (sender_address,) = parsed["From"].addresses
        assert sender_address.addr_spec == "no-reply@portal.example"
        assert sender_address.display_name == name
        assert "bank.example" not in email.utils.parseaddr(str(parsed["From"]))[1]


class TestLicenseKeyEmail:
    @pytest.mark.parametrize(
        ("locale", "expiry"), [("en", "December 24, 2027"), ("it", "24 dicembre 2027")]
    )
    def test_shows_the_key_limits_expiry_and_message(
        self, renderer: EmailRenderer, locale: str, expiry: str
    ) -> None:
        email = renderer.render(make_request(EmailTemplate.LICENSE_KEY_DELIVERED, locale=locale))
        page = html.unescape(email.html)
        for body in (email.text, page):
            assert LICENSE_KEY in body
            assert expiry in body
            assert ACTIVATION_MESSAGE in body
        # The key stands on its own, in a monospace block.
        assert f"\n    {LICENSE_KEY}\n" in email.text
        assert re.search(r"font-family:ui-monospace[^>]*>" + LICENSE_KEY + "<", email.html)
        assert LICENSE_KEY not in email.subject

    def test_unlimited_and_lifetime_keys(self, renderer: EmailRenderer) -> None:
        details = LICENSE.model_copy(
            update={"activations_limit": None, "date": None, "activation_message": ""}
        )
        email = renderer.render(
            make_request(EmailTemplate.LICENSE_KEY_DELIVERED, billing=details, locale="it")
        )
        assert "Attivazioni: Illimitate" in email.text
        assert "Scadenza: Mai" in email.text
        assert "Come attivarla" not in email.text

    def test_control_characters_in_the_activation_message_become_spaces(
        self, renderer: EmailRenderer
    ) -> None:
        details = LICENSE.model_copy(update={"activation_message": "Step 1:\tOpen\r\nStep 2"})
        checked = BillingDetails.model_validate(details.model_dump())
        assert checked.activation_message == "Step 1: Open\nStep 2"
        email = renderer.render(make_request(EmailTemplate.LICENSE_KEY_DELIVERED, billing=checked))
        assert "Step 1: Open\nStep 2" in email.text

    def test_the_activation_message_is_escaped_in_html(self, renderer: EmailRenderer) -> None:
        details = LICENSE.model_copy(update={"activation_message": "<script>x()</script>"})
        email = renderer.render(make_request(EmailTemplate.LICENSE_KEY_DELIVERED, billing=details))
        assert "<script>" not in email.html
        assert "&lt;script&gt;x()&lt;/script&gt;" in email.html

    def test_the_key_is_required_there_and_nowhere_else(self) -> None:
        with pytest.raises(ValidationError, match="license_key is required") as missing:
            make_request(EmailTemplate.LICENSE_KEY_DELIVERED, license_key="")
        with pytest.raises(ValidationError, match="carries no license_key"):
            make_request(EmailTemplate.RENEWAL_REMINDER, license_key=LICENSE_KEY)
        assert LICENSE_KEY not in repr(make_request(EmailTemplate.LICENSE_KEY_DELIVERED))
        assert "license_key" in str(missing.value)
