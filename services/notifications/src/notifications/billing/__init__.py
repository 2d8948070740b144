"""Customer billing emails: receipts and subscription notices, from events."""
