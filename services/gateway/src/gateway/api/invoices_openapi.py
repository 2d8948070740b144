"""The OpenAPI path of the invoice PDF endpoint (merged into ``build_openapi``)."""

from __future__ import annotations

from typing import Any

from gateway.api.invoices import RetrieveInvoiceQuery


def invoice_paths(
    *,
    problem: Any,
    query_parameters: Any,
    common_errors: dict[str, Any],
) -> dict[str, Any]:
    """``/invoices/payments/{payment_id}``: raw PDF bytes, as Dodo's."""
    return {
        "/invoices/payments/{payment_id}": {
            "get": {
                "operationId": "retrieve_payment_invoice",
                "summary": "The invoice PDF of a payment (the stored document, byte for byte)",
                "description": "When the customer re-issued the invoice with corrected billing "
                "details from the portal, this is the latest version's PDF (same invoice "
                'number, file name "invoice-<number>-v<n>.pdf", and it says which invoice it '
                "replaces); the earlier versions stay downloadable from the customer portal.",
                "parameters": [
                    {
                        "name": "payment_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    },
                    *query_parameters(RetrieveInvoiceQuery),
                ],
                "responses": {
                    "200": {
                        "description": "The invoice PDF, as an attachment "
                        '(Content-Disposition: attachment; filename="invoice-<number>.pdf")',
                        "headers": {
                            "Content-Disposition": {
                                "description": "attachment with the invoice's file name",
                                "required": True,
                                "schema": {"type": "string"},
                            }
                        },
                        "content": {
                            "application/pdf": {"schema": {"type": "string", "format": "binary"}}
                        },
                    },
                    "404": problem(
                        "No invoice for this payment in this business and mode (no such "
                        "payment, another business's, or not invoiced yet)"
                    ),
                    "422": problem("Invalid, repeated or unknown query parameters"),
                    **common_errors,
                },
            },
        },
    }
