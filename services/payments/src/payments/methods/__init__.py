"""Saved payment methods (collection ``payment_methods``)."""
