"""Render an email's subject, plain-text and HTML bodies from Jinja2 templates.

Each email's wording lives in ``templates/copy/<template>.j2`` (subject, heading,
intro, action, outro, all in ``{% trans %}`` blocks); ``layout.html`` and
``layout.txt`` put that wording around the branding, the button and the expiry.
The HTML environment autoescapes everything; the text environment does not,
because a text/plain body must show "<" as "<", not "&lt;".
"""

from __future__ import annotations

import gettext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from billing_kit.colors import contrast_text
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from notifications.email.formatting import format_amount, format_count, format_day
from notifications.email.i18n import load_translations
from notifications.email.models import EmailRequest, EmailTemplate, RenderedEmail

TEMPLATE_DIR = Path(__file__).parent / "templates"
I18N_EXTENSION = "jinja2.ext.i18n"


def _environment(translations: gettext.NullTranslations, *, html: bool) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        # Off only for the text/plain body, which must not contain HTML entities.
        autoescape=html,  # noqa: S701
        extensions=[I18N_EXTENSION],
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # Templates ship with the code: no mtime checks (disk I/O) on every render.
        auto_reload=False,
    )
    # Trimmed: a {% trans %} block's line breaks are layout, not part of the message.
    env.policies["ext.i18n.trimmed"] = True
    # Newstyle gettext escapes the variables of a translated message under autoescape.
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return env


def button_text_color(accent: str) -> str:
    """White or dark text, whichever reads better on ``accent``: at least 4.5:1 (WCAG AA)."""
    return contrast_text(accent)


@dataclass(frozen=True)
class _LocaleEnvironments:
    html: Environment
    text: Environment


class EmailRenderer:
    """Renders every template in every supported locale; build once per process."""

    def __init__(self, *, default_sender_name: str) -> None:
        # Used as the name in the unified portal's emails, which belong to no one business.
        self._default_sender_name = default_sender_name
        self._envs = {
            locale: _LocaleEnvironments(
                html=_environment(translations, html=True),
                text=_environment(translations, html=False),
            )
            for locale, translations in load_translations().items()
        }
        # Compile every template now: a broken one stops the start instead of a send,
        # and no template file is read from disk on the event loop later.
        names = ["layout.html", "layout.txt", "expiry.j2", "facts.j2"]
        names += [f"copy/{template.value}.j2" for template in EmailTemplate]
        for envs in self._envs.values():
            for name in names:
                envs.html.get_template(name)
                envs.text.get_template(name)

    def render(self, request: EmailRequest) -> RenderedEmail:
        """Subject, text and HTML of ``request`` in its locale (English if unsupported)."""
        envs = self._envs.get(request.locale) or self._envs["en"]
        context = self._context(request)
        copy_name = f"copy/{request.template.value}.j2"
        text_copy = envs.text.get_template(copy_name).make_module(context)
        html_copy = envs.html.get_template(copy_name).make_module(context)
        text = envs.text.get_template("layout.txt").render(
            context, copy=text_copy, support=context["support_email"]
        )
        html = envs.html.get_template("layout.html").render(
            context, copy=html_copy, support=self._support_link(context["support_email"])
        )
        # A template module exposes its top-level {% set %}s as attributes.
        subject = " ".join(str(getattr(text_copy, "subject")).split())  # noqa: B009
        return RenderedEmail(subject=subject, text=text, html=html, locale=request.locale)

    def _context(self, request: EmailRequest) -> dict[str, Any]:
        branding = request.branding
        accent = branding.accent
        minutes = request.link_expires_minutes
        # Whole hours read better ("24 hours") than minutes for long-lived links.
        hours = minutes // 60 if minutes >= 120 and minutes % 60 == 0 else 0
        return {
            "lang": request.locale,
            "template": request.template.value,
            "business_name": branding.business_name or self._default_sender_name,
            "logo_url": branding.logo_url,
            "accent": accent,
            "button_text": button_text_color(accent),
            "support_email": str(branding.support_email or ""),
            "customer_name": request.customer_name,
            "link": request.link if request.template.has_link else "",
            "expires_minutes": minutes,
            "expires_hours": hours,
            "test_mode": request.mode == "test",
            "is_billing": request.template.is_billing,
            # In memory only: the key email's one secret, shown to its owner.
            "license_key": request.license_key,
            **_billing_context(request),
        }

    @staticmethod
    def _support_link(address: str) -> Markup | str:
        if not address:
            return ""
        # Markup.format escapes the address; the anchor itself is ours.
        return Markup('<a href="mailto:{0}" style="color:inherit;">{0}</a>').format(address)


def _billing_context(request: EmailRequest) -> dict[str, Any]:
    """Amounts and dates already formatted for the locale (Babel), so templates
    and translators only place them ("356,20 €", "7 dicembre 2026")."""
    billing = request.billing
    if billing is None:
        return {
            "product_name": "",
            "amount": "",
            "date": "",
            "invoice_number": "",
            "activations_limit": "",
            "activation_message": "",
        }
    amount = ""
    if billing.amount is not None and billing.currency:
        amount = format_amount(billing.amount, billing.currency, request.locale)
    return {
        "product_name": billing.product_name,
        "amount": amount,
        "date": format_day(billing.date, request.locale) if billing.date else "",
        "invoice_number": billing.invoice_number,
        "activations_limit": (
            format_count(billing.activations_limit, request.locale)
            if billing.activations_limit is not None
            else ""
        ),
        "activation_message": billing.activation_message,
    }


def template_names() -> list[EmailTemplate]:
    """Every template, in declaration order (handy for tests and docs)."""
    return list(EmailTemplate)
