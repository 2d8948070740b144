"""The hosted payment page's HTTP listener (aiohttp): card form, 3-D Secure page, assets.

Works without JavaScript. Card numbers and CVCs arrive in a POST body and are
never logged (the access log writes the route template and status only, never
the path, query or body), never echoed back into the page, never put in an
error message. Every form carries a CSRF token bound to its session (or
challenge) id; pages send a strict CSP (no inline script or style) and
``Referrer-Policy: no-referrer`` so the session id in the URL does not leak.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from billing_kit.clock import Clock
from billing_kit.colors import COLOR_RE, accent_ink, contrast_text
from billing_kit.errors import FailedPrecondition, NotFound
from yarl import URL

from payments.charges.models import PaymentStatus, StoredPayment
from payments.charges.service import ChargesService
from payments.hosted.models import PaymentSession, SessionPurpose, SessionStatus
from payments.hosted.service import CardRefused, HostedPageService, with_query
from payments.hosted.texts import PROBLEM_TEXT, Texts, format_amount, pick_language
from payments.processor.cards import read_card

log = logging.getLogger("payments.hosted.access")
HERE = Path(__file__).parent
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class PageContext:
    """What the handlers share."""

    hosted: HostedPageService
    charges: ChargesService
    secret: bytes
    clock: Clock
    base_path: str
    texts: Texts
    templates: jinja2.Environment


PAGE = web.AppKey("hosted_page", PageContext)


def csrf_token(secret: bytes, kind: str, key: str) -> str:
    """A form token bound to one session (or challenge) id."""
    return hmac.new(secret, f"csrf:{kind}:{key}".encode(), hashlib.sha256).hexdigest()


def _csrf_ok(secret: bytes, kind: str, key: str, sent: object) -> bool:
    return isinstance(sent, str) and hmac.compare_digest(csrf_token(secret, kind, key), sent)


def _origin(url: str) -> str:
    parsed = URL(url)
    return str(parsed.origin()) if parsed.is_absolute() else ""


def _render(
    request: web.Request,
    template: str,
    *,
    language: str,
    status: int = 200,
    form_target: str = "",
    **values: Any,
) -> web.Response:
    page = request.app[PAGE]
    gettext = page.texts.for_language(language).gettext

    def translate(message: str, **values: str) -> str:
        # Values are filled in after translation, as gettext expects; Jinja escapes the result.
        text = gettext(message)
        return text % values if values else text

    html = page.templates.get_template(template).render(
        _=translate,
        lang=language,
        base_path=page.base_path,
        **values,
    )
    response = web.Response(text=html, status=status, content_type="text/html")
    extra = f" {form_target}" if form_target else ""
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self' https:; "
        f"form-action 'self'{extra}; frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _branding(session: PaymentSession | None) -> dict[str, Any]:
    if session is None:
        return {"business_name": "", "accent": "", "logo_url": "", "test_mode": True}
    return {
        "business_name": session.branding.business_name,
        "accent": session.branding.accent_color.upper(),
        "logo_url": session.branding.logo_url,
        "test_mode": session.mode == "test",
    }


def _message(
    request: web.Request,
    session: PaymentSession | None,
    language: str,
    status: int,
    heading: str,
    message: str,
    return_url: str = "",
) -> web.Response:
    gettext = request.app[PAGE].texts.for_language(language).gettext
    return _render(
        request,
        "message.html",
        language=language,
        status=status,
        heading=gettext(heading),
        message=gettext(message),
        return_url=return_url,
        **_branding(session),
    )


def _closed_page(request: web.Request, session: PaymentSession, language: str) -> web.Response:
    if session.status is SessionStatus.EXPIRED:
        return _message(
            request,
            session,
            language,
            410,
            "Page expired",
            "This payment page has expired. Please start again.",
            session.return_url,
        )
    return _message(
        request,
        session,
        language,
        409,
        "Already done",
        "This payment page was already used.",
        session.return_url,
    )


async def _session_or_404(request: web.Request) -> PaymentSession | web.Response:
    language = pick_language("", request.headers.get("Accept-Language", ""))
    try:
        return await request.app[PAGE].hosted.open_session(request.match_info["session_id"])
    except NotFound:
        return _message(
            request,
            None,
            language,
            404,
            "Page not found",
            "This payment page does not exist or has expired.",
        )


def _form_page(
    request: web.Request,
    session: PaymentSession,
    language: str,
    *,
    status: int = 200,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    form_error: str = "",
) -> web.Response:
    page = request.app[PAGE]
    gettext = page.texts.for_language(language).gettext
    paying = session.purpose is SessionPurpose.PAY
    amount_text = format_amount(session.amount, session.currency, language) if paying else ""
    return _render(
        request,
        "card_form.html",
        language=language,
        status=status,
        form_target=_origin(session.return_url),
        heading=gettext("Pay") if paying else gettext("Add a card"),
        submit_label=gettext("Pay %(amount)s") % {"amount": amount_text}
        if paying
        else gettext("Save card"),
        amount_text=amount_text,
        action=f"{page.base_path}/pay/{session.session_id}",
        csrf_token=csrf_token(page.secret, "session", session.session_id),
        errors=errors or {},
        values=values or {},
        form_error=form_error,
        cancel_url=with_query(
            session.return_url, payment_session_id=session.session_id, status="cancelled"
        ),
        **_branding(session),
    )


async def show_card_form(request: web.Request) -> web.StreamResponse:
    """``GET /pay/{session_id}``: the card form."""
    session = await _session_or_404(request)
    if isinstance(session, web.Response):
        return session
    language = pick_language(session.locale, request.headers.get("Accept-Language", ""))
    if session.status is SessionStatus.CHARGED and session.payment_id:
        # A PAY session whose charge waits for 3-D Secure: back to its challenge.
        payment = await request.app[PAGE].charges.get_payment(
            session.business_id, session.mode, session.payment_id
        )
        if payment.challenge_url:
            raise web.HTTPSeeOther(location=payment.challenge_url)
    if session.status is not SessionStatus.OPEN:
        return _closed_page(request, session, language)
    return _form_page(request, session, language)


async def submit_card_form(request: web.Request) -> web.StreamResponse:
    """``POST /pay/{session_id}``: check the fields, then save (and charge) the card."""
    page = request.app[PAGE]
    session = await _session_or_404(request)
    if isinstance(session, web.Response):
        return session
    language = pick_language(session.locale, request.headers.get("Accept-Language", ""))
    if session.status is not SessionStatus.OPEN:
        return _closed_page(request, session, language)
    form = await request.post()
    gettext = page.texts.for_language(language).gettext
    if not _csrf_ok(page.secret, "session", session.session_id, form.get("csrf_token")):
        return _form_page(
            request,
            session,
            language,
            status=403,
            form_error=gettext("This form expired. Please try again."),
        )
    fields = {
        name: str(form.get(name, "")) for name in ("cc-name", "cc-number", "cc-exp", "cc-csc")
    }
    # Only what is safe to show again goes back into the page: never the number or CVC.
    keep = {"cc-name": fields["cc-name"], "cc-exp": fields["cc-exp"]}
    card = read_card(
        number=fields["cc-number"],
        expiry=fields["cc-exp"],
        cvc=fields["cc-csc"],
        holder_name=fields["cc-name"],
        now=page.clock.now(),
    )
    del fields, form
    if isinstance(card, dict):
        errors = {name: gettext(PROBLEM_TEXT[problem]) for name, problem in card.items()}
        return _form_page(request, session, language, status=422, errors=errors, values=keep)
    try:
        outcome = await page.hosted.submit_card(session.session_id, card)
    except FailedPrecondition:
        return _closed_page(request, await page.hosted.open_session(session.session_id), language)
    finally:
        del card
    if isinstance(outcome, CardRefused):
        return _form_page(
            request, session, language, status=402, values=keep, form_error=gettext(outcome.message)
        )
    raise web.HTTPSeeOther(location=outcome)


async def _session_of(request: web.Request, payment: StoredPayment) -> PaymentSession | None:
    if not payment.session_id:
        return None
    try:
        return await request.app[PAGE].hosted.open_session(payment.session_id)
    except NotFound:
        return None


def _done_url(payment: StoredPayment) -> str:
    if not payment.return_url:
        return ""
    return with_query(payment.return_url, payment_id=payment.payment_id, status=str(payment.status))


async def show_challenge(request: web.Request) -> web.StreamResponse:
    """``GET /challenge/{challenge_id}``: the test 3-D Secure page (Complete / Fail)."""
    page = request.app[PAGE]
    challenge_id = request.match_info["challenge_id"]
    accept = request.headers.get("Accept-Language", "")
    try:
        payment = await page.charges.challenge(challenge_id)
    except NotFound:
        return _message(
            request,
            None,
            pick_language("", accept),
            404,
            "Page not found",
            "This payment page does not exist or has expired.",
        )
    session = await _session_of(request, payment)
    language = pick_language(session.locale if session else "", accept)
    if payment.status is not PaymentStatus.REQUIRES_CUSTOMER_ACTION:
        return _message(
            request,
            session,
            language,
            409,
            "Already done",
            "This payment was already confirmed or refused.",
            _done_url(payment),
        )
    return _render(
        request,
        "challenge.html",
        language=language,
        form_target=_origin(payment.return_url),
        action=f"{page.base_path}/challenge/{challenge_id}",
        csrf_token=csrf_token(page.secret, "challenge", challenge_id),
        amount_text=format_amount(payment.total_amount, payment.currency, language),
        last4=payment.card_last_four,
        **(_branding(session) | {"test_mode": payment.mode == "test"}),
    )


async def submit_challenge(request: web.Request) -> web.StreamResponse:
    """``POST /challenge/{challenge_id}``: apply Complete or Fail, then return to the caller."""
    page = request.app[PAGE]
    challenge_id = request.match_info["challenge_id"]
    accept = request.headers.get("Accept-Language", "")
    form = await request.post()
    language = pick_language("", accept)
    if not _csrf_ok(page.secret, "challenge", challenge_id, form.get("csrf_token")):
        return _message(
            request, None, language, 403, "Please try again", "This form expired. Please try again."
        )
    action = form.get("action")
    if action not in ("complete", "fail"):
        return _message(
            request, None, language, 422, "Please try again", "Choose Complete or Fail."
        )
    try:
        payment = await page.charges.complete_challenge(challenge_id, approved=action == "complete")
    except NotFound:
        return _message(
            request,
            None,
            language,
            404,
            "Page not found",
            "This payment page does not exist or has expired.",
        )
    except FailedPrecondition:
        return _message(
            request,
            None,
            language,
            410,
            "Page expired",
            "This payment page has expired. Please start again.",
        )
    done = _done_url(payment)
    if done:
        raise web.HTTPSeeOther(location=done)
    session = await _session_of(request, payment)
    if payment.status is PaymentStatus.SUCCEEDED:
        return _message(
            request,
            session,
            language,
            200,
            "Payment confirmed",
            "Thank you: your payment was confirmed.",
        )
    return _message(
        request,
        session,
        language,
        200,
        "Payment not confirmed",
        "The payment was not confirmed with your bank.",
    )


async def brand_css(request: web.Request) -> web.StreamResponse:
    """``GET /brand/{rrggbb}.css``: the accent as CSS variables (cacheable, no personal data)."""
    color = "#" + request.match_info["color"].upper()
    if not COLOR_RE.match(color):
        raise web.HTTPNotFound(text="unknown colour")
    css = (
        ":root {"
        f" --accent: {color}; --accent-contrast: {contrast_text(color)};"
        f" --accent-ink: {accent_ink(color)}; }}\n"
    )
    response = web.Response(text=css, content_type="text/css")
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response


@web.middleware
async def access_log_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log the route template and status only (never the path, query or body); set safe headers."""
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        _secure(exc)
        raise
    finally:
        route = (
            request.match_info.route.resource.canonical
            if request.match_info.route.resource
            else "unmatched"
        )
        log.info(
            "%s %s %s",
            request.method,
            route,
            status,
            extra={
                "http_route": route,
                "http_status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )
    _secure(response)
    return response


def _secure(response: web.StreamResponse) -> None:
    response.headers.setdefault(
        "Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Server"] = "payments"
    if "Cache-Control" not in response.headers:
        response.headers["Cache-Control"] = "no-store"


def create_page_app(
    *,
    hosted: HostedPageService,
    charges: ChargesService,
    secret: bytes,
    clock: Clock,
    base_path: str,
) -> web.Application:
    """The page's aiohttp application; routes live under ``base_path`` (e.g. ``/hosted``)."""
    app = web.Application(middlewares=[access_log_and_headers], client_max_size=16 * 1024)
    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    app[PAGE] = PageContext(hosted, charges, secret, clock, base_path, Texts(), templates)
    app.router.add_get(f"{base_path}/pay/{{session_id}}", show_card_form, name="card_form")
    app.router.add_post(f"{base_path}/pay/{{session_id}}", submit_card_form)
    app.router.add_get(f"{base_path}/challenge/{{challenge_id}}", show_challenge, name="challenge")
    app.router.add_post(f"{base_path}/challenge/{{challenge_id}}", submit_challenge)
    app.router.add_get(f"{base_path}/brand/{{color}}.css", brand_css, name="brand_css")
    app.router.add_static(f"{base_path}/static", HERE / "static", name="static")
    return app
