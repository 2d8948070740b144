"""Products: the catalogue a business sells (one-time or recurring prices, license-key settings)."""
