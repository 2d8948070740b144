"""Merchant webhooks: endpoints, signed deliveries and their log (Standard Webhooks)."""
