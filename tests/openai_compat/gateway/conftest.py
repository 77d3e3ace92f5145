"""The app with a fake OpenAI-compatible upstream and an agent `helper` (issue 16's fixtures)."""

from tests.assistant.conftest import admin, agent, settings, upstream

__all__ = ["admin", "agent", "settings", "upstream"]
