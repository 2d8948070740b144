"""Checkout sessions: a cart of products paid once on the hosted page."""
