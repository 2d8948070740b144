"""The card processor: tokenizes cards and charges tokens (a test-mode processor for now)."""
