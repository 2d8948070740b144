"""The subscription aggregate: lifecycle, renewals, dues and the per-business test clock."""
