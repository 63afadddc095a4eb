"""Pytest fixtures for the fake exchange (filled in by the exchange work)."""
