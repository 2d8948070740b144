"""Portal pages: the customer-facing side of the gateway."""
