"""Testing tactor programs: an actor test kit, and a pytest plugin (``tactor.testing.plugin``,
registered by tactor's ``pytest11`` entry point) built on it. See docs/testing.md.

Importing this imports neither pytest nor an optional dependency.
"""

from .kit import ActorFailed, ActorTestKit, Captured
from .urls import fresh_url

__all__ = ["ActorFailed", "ActorTestKit", "Captured", "fresh_url"]
