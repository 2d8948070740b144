"""Charges: the payments ledger (collection ``payments``) and its events."""
