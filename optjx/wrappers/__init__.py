"""Transformations that wrap another one: lookahead, averaging, guards."""
