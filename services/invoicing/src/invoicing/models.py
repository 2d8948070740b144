"""Domain models of the invoicing service: invoices and the events it reads and emits."""

from __future__ import annotations

from enum import StrEnum

from billing_kit.scoping import Mode
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

PAYMENT_SUCCEEDED = "payment.succeeded"
INVOICE_CREATED = "invoice.created"
INVOICE_REISSUED = "invoice.reissued"
# The languages an invoice can be written in; anything else is written in English.
SUPPORTED_LOCALES = ("en", "it")
DEFAULT_LOCALE = "en"


class InvoiceKind(StrEnum):
    """An invoice, or (once refunds exist) a credit note numbered in the same sequence."""

    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceLine(BaseModel):
    """One line of an invoice: what was bought, how many, at what unit price."""

    model_config = ConfigDict(frozen=True)

    description: str = Field(description="What was bought (the product's name).")
    quantity: int = Field(ge=1, description="How many.")
    unit_amount: int = Field(ge=0, description="Minor units of the invoice's currency.")
    amount: int = Field(ge=0, description="quantity x unit_amount, minor units.")


class Seller(BaseModel):
    """The business as printed on the invoice (a snapshot: later edits do not change it)."""

    model_config = ConfigDict(frozen=True)

    name: str = ""
    address: str = ""
    tax_id: str = ""
    support_email: str = ""
    logo_url: str = ""
    accent_color: str = ""


class Buyer(BaseModel):
    """The customer as printed on the invoice (a snapshot)."""

    model_config = ConfigDict(frozen=True)

    name: str = ""
    email: str = ""
    address: str = ""
    tax_id: str = ""
    # The company the invoice is addressed to (from the customer's billing details).
    business_name: str = ""


class BuyerDetails(BaseModel):
    """The buyer's billing details an invoice version was printed from (structured).

    From the customer's billing details in auth when set, else from the
    payment's billing address and tax id. Two versions with equal details
    print the same buyer, which is what makes a re-issue idempotent.
    """

    model_config = ConfigDict(frozen=True)

    country: str = ""
    city: str = ""
    state: str = ""
    street: str = ""
    zipcode: str = ""
    tax_id: str = ""
    business_name: str = ""

    def address(self) -> BillingAddressData | None:
        """The address part, as the PDF formats addresses (None without a country)."""
        if not self.country:
            return None
        return BillingAddressData(
            country=self.country,
            city=self.city or None,
            state=self.state or None,
            street=self.street or None,
            zipcode=self.zipcode or None,
        )


class InvoiceVersion(BaseModel):
    """A re-issue of an invoice (version 2, 3, ...): same number, corrected buyer, new PDF."""

    model_config = ConfigDict(frozen=True)

    version: int = Field(ge=2)
    issued_at: AwareDatetime
    buyer: Buyer
    buyer_details: BuyerDetails
    # The GridFS id of this version's PDF (the original's is the invoice id).
    pdf_id: str = Field(min_length=1)


class BillingAddressData(BaseModel):
    """The buyer's billing address as the payment carries it (Dodo's BillingAddress)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    country: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2.")
    city: str | None = Field(default=None, max_length=200)
    state: str | None = Field(default=None, max_length=200)
    street: str | None = Field(default=None, max_length=500)
    zipcode: str | None = Field(default=None, max_length=50)


class PaymentLineData(BaseModel):
    """One line of what a payment paid for (payments' ``PaymentLine``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    product_id: str = Field(min_length=1, max_length=128)
    product_name: str = Field(default="", max_length=500)
    quantity: int = Field(ge=1, le=10_000)
    unit_amount: int = Field(ge=0, description="Minor units, one unit.")


class Invoice(BaseModel):
    """An issued invoice for one payment; its content never changes once the PDF is stored.

    ``seller``/``buyer``/``locale`` are filled from auth when the PDF is
    prepared (see :mod:`invoicing.issuing`); until then ``pdf_ready`` is false.
    """

    model_config = ConfigDict(frozen=True)

    invoice_id: str = Field(min_length=1)
    number: str = Field(min_length=1, max_length=64)
    kind: InvoiceKind = InvoiceKind.INVOICE
    business_id: str = Field(min_length=1)
    mode: Mode
    customer_id: str = Field(min_length=1)
    payment_id: str = Field(min_length=1)
    subscription_id: str = ""
    lines: tuple[InvoiceLine, ...] = ()
    subtotal: int = Field(default=0, ge=0, description="minor units of currency")
    tax: int = Field(default=0, ge=0, description="minor units of currency; present, may be 0")
    total: int = Field(ge=0, description="minor units of currency")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    issued_at: AwareDatetime
    paid_at: AwareDatetime | None = None
    payment_method_brand: str = ""
    payment_method_last4: str = ""
    seller: Seller | None = None
    buyer: Buyer | None = None
    # The payment's billing address and buyer tax id, kept from issue until the
    # buyer snapshot is taken (the address is written out in the invoice's language).
    billing_address: BillingAddressData | None = None
    buyer_tax_id: str = ""
    locale: str = DEFAULT_LOCALE
    pdf_ready: bool = False
    credits_invoice_id: str = ""
    # What the buyer block of the original was printed from (None: invoices
    # finished before billing details existed; derived from the payment then).
    buyer_details: BuyerDetails | None = None
    # Re-issues, oldest first; the original (version 1) is this record itself.
    versions: tuple[InvoiceVersion, ...] = ()
    # Set only on the copy a re-issued version is rendered from: which
    # version it is and when the invoice it replaces was issued.
    version: int = 1
    replaces_issued_at: AwareDatetime | None = None

    @property
    def latest_version(self) -> int:
        """1 for an invoice never re-issued, else the newest version's number."""
        return self.versions[-1].version if self.versions else 1

    def original_details(self) -> BuyerDetails:
        """What version 1 printed (derived from the payment for older invoices)."""
        if self.buyer_details is not None:
            return self.buyer_details
        address = self.billing_address
        return BuyerDetails(
            country=address.country if address else "",
            city=(address.city or "") if address else "",
            state=(address.state or "") if address else "",
            street=(address.street or "") if address else "",
            zipcode=(address.zipcode or "") if address else "",
            tax_id=self.buyer.tax_id if self.buyer else self.buyer_tax_id,
        )

    def latest_details(self) -> BuyerDetails:
        """The buyer details the latest version prints."""
        return self.versions[-1].buyer_details if self.versions else self.original_details()

    def details_of(self, version: int) -> BuyerDetails:
        """The buyer details version ``version`` prints; ValueError when none."""
        if version == 1:
            return self.original_details()
        for entry in self.versions:
            if entry.version == version:
                return entry.buyer_details
        raise ValueError(f"no version {version}")

    def as_version(self, version: int) -> Invoice:
        """The invoice as version ``version`` shows it (1 = itself); ValueError when none."""
        if version == 1:
            return self
        for entry in self.versions:
            if entry.version == version:
                return self.model_copy(
                    update={
                        "buyer": entry.buyer,
                        "version": version,
                        "issued_at": entry.issued_at,
                        "replaces_issued_at": self.issued_at,
                    }
                )
        raise ValueError(f"no version {version}")

    def pdf_id_of(self, version: int) -> str:
        """The GridFS id of a version's PDF; ValueError when there is no such version."""
        if version == 1:
            return self.invoice_id
        for entry in self.versions:
            if entry.version == version:
                return entry.pdf_id
        raise ValueError(f"no version {version}")

    @property
    def description(self) -> str:
        """One line for lists: the first line's description."""
        return self.lines[0].description if self.lines else ""

    @property
    def pdf_filename(self) -> str:
        """``invoice-<number>.pdf`` (a credit note: ``credit-note-<number>.pdf``;
        a re-issued version: ``invoice-<number>-v2.pdf``)."""
        stem = "credit-note" if self.kind is InvoiceKind.CREDIT_NOTE else "invoice"
        suffix = f"-v{self.version}" if self.version > 1 else ""
        return f"{stem}-{self.number}{suffix}.pdf"


class PaymentSucceededData(BaseModel):
    """What invoicing reads of ``payment.succeeded`` (payments' ``PaymentEventData``).

    Only the fields an invoice needs; the rest of the payment is ignored, so
    payments may add fields without breaking this consumer. A payload missing
    any of these, or not succeeded, is refused (nothing is written).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    payment_id: str = Field(min_length=1, max_length=128)
    business_id: str = Field(min_length=1, max_length=128)
    mode: Mode
    customer_id: str = Field(min_length=1, max_length=128)
    subscription_id: str = Field(default="", max_length=128)
    total_amount: int = Field(ge=0, description="Minor units of `currency`.")
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    status: str = Field(pattern=r"^succeeded$", description="Only a succeeded payment is invoiced.")
    card_brand: str = Field(default="", max_length=32)
    card_last_four: str = Field(default="", pattern=r"^(\d{4})?$")
    description: str = Field(default="", max_length=500)
    updated_at: AwareDatetime = Field(description="When the payment succeeded.")
    lines: list[PaymentLineData] = Field(
        default_factory=list, max_length=100, description="What was paid for; older events: none."
    )
    billing: BillingAddressData | None = Field(default=None, description="Buyer's address.")
    tax_id: str = Field(default="", max_length=64, description="Buyer's tax id.")
    tax: int | None = Field(default=None, ge=0, description="Tax in `total_amount`, when known.")


class InvoiceCreatedData(BaseModel):
    """``data`` of ``invoice.created``: emitted once the invoice's PDF is stored.

    A consumer that attaches the PDF fetches it with ``GetInvoicePdf``.
    """

    model_config = ConfigDict(frozen=True)

    invoice_id: str = Field(description="`inv_…`")
    number: str = Field(description="Gapless per business and mode, e.g. `INV-000042`.")
    business_id: str = Field(description="The seller.")
    mode: Mode = Field(description="`test` or `live`.")
    customer_id: str = Field(description="The buyer.")
    payment_id: str = Field(description="The payment the invoice documents.")
    subscription_id: str = Field(default="", description="The subscription paid, or empty.")
    total: int = Field(ge=0, description="Minor units of `currency`.")
    currency: str = Field(description="ISO 4217, upper case.")
    locale: str = Field(description="The language the PDF is written in (`en`, `it`).")
    pdf_filename: str = Field(description="`invoice-<number>.pdf`.")


class InvoiceReissuedData(BaseModel):
    """``data`` of ``invoice.reissued``: a new version of an invoice, its PDF stored.

    The earlier versions and their PDFs are kept; ``GetInvoicePdf`` with
    ``version`` fetches any of them (0 = the latest).
    """

    model_config = ConfigDict(frozen=True)

    invoice_id: str = Field(description="`inv_…` (the same for every version).")
    number: str = Field(description="The invoice's number, unchanged by a re-issue.")
    version: int = Field(ge=2, description="The new version (2, 3, ...).")
    business_id: str = Field(description="The seller.")
    mode: Mode = Field(description="`test` or `live`.")
    customer_id: str = Field(description="The buyer.")
    payment_id: str = Field(description="The payment the invoice documents.")
    replaces_issued_at: AwareDatetime = Field(description="When the original was issued.")
    pdf_filename: str = Field(description="`invoice-<number>-v<version>.pdf`.")
