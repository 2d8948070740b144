"""The hosted payment page: sessions (collection ``payment_sessions``) and the HTTP listener."""
