"""What every transport names and answers alike about endpoints and their providers: the
mailboxes of an endpoint and of a provider, the one wording of NoProvider, and a registry entry."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ProviderEntry", "endpoint_mailbox", "no_provider_message", "provider_mailbox"]


def endpoint_mailbox(endpoint: str) -> str:
    """The mailbox every provider of ``endpoint`` competes on."""
    return f"ep:{endpoint}"


def provider_mailbox(provider: str) -> str:
    """The mailbox only ``provider`` consumes (direct calls and broadcasts)."""
    return f"pv:{provider}"


def no_provider_message(endpoint: str, provider: str | None) -> str:
    """The one wording of NoProvider, for every transport."""
    if provider is None:
        return f"no live provider serves the endpoint {endpoint!r}"
    return f"provider {provider!r} of {endpoint!r} is not live"


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """A live provider of an endpoint, as :meth:`Transport.provider_entries` lists it."""

    provider: str
    info: bytes  # what register() was given; b"" if the transport lost it (a Redis restart)
