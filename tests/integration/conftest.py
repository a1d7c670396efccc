"""Fixtures of the integration tests (the servers are the root conftest's)."""

from tests.integration.web_client import web  # noqa: F401  (the app over the shared scenario)
