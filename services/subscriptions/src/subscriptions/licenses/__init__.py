"""License keys: issued on a first purchase, activated by the software bought."""
