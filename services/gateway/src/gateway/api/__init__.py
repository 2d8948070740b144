"""The merchant REST API, wire-compatible with the Dodo Payments API."""
