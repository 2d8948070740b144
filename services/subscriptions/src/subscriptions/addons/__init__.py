"""Add-ons: per-unit extras a business sells on top of its subscription products."""
