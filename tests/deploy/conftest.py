"""Reuse the gateway fixtures (a real server on 127.0.0.1) for the deploy checks."""

from tests.gateway.conftest import gateway  # noqa: F401 - a fixture, re-exported
