"""The result of a broadcast: every provider's outcome, and the values that arrived."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["BroadcastResult", "Outcome"]

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """What one provider did with a broadcast: answered with a value, raised, or stayed silent.

    ``value`` is meaningful when ``ok``; ``error`` holds the exception the
    provider raised (re-raisable as the caller would get it from a call);
    ``answered`` is False when no reply came before the deadline (``error``
    is then :class:`~tactor.errors.NoProvider` if the provider was gone
    before the message could be sent, a ``TransportError`` if the connection
    was lost while waiting, else None).
    """

    provider: str
    answered: bool
    value: R | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        return self.answered and self.error is None


class BroadcastResult(Sequence[R]):
    """The successful values of a broadcast, in provider order, plus every outcome.

    Iterating, indexing and ``len()`` see only the values of the providers that
    answered without error. ``outcomes`` has one :class:`Outcome` per provider
    that was live when the broadcast was sent; ``complete`` says whether every
    one of them answered (with a value or an error) before the deadline.
    """

    __slots__ = ("_values", "outcomes")

    def __init__(self, outcomes: Sequence[Outcome[R]]) -> None:
        self.outcomes: tuple[Outcome[R], ...] = tuple(outcomes)
        self._values: list[R] = [o.value for o in self.outcomes if o.ok]  # type: ignore[misc]

    @property
    def complete(self) -> bool:
        return all(o.answered for o in self.outcomes)

    @property
    def values(self) -> list[R]:
        return list(self._values)

    @property
    def errors(self) -> dict[str, BaseException]:
        """Provider id -> the exception it answered with."""
        return {o.provider: o.error for o in self.outcomes if o.error is not None}

    @property
    def missing(self) -> list[str]:
        """Providers that gave no answer before the deadline."""
        return [o.provider for o in self.outcomes if not o.answered]

    def __iter__(self) -> Iterator[R]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __getitem__(self, index: int) -> R:  # type: ignore[override]
        return self._values[index]

    def __repr__(self) -> str:
        return (
            f"<BroadcastResult values={self._values!r} errors={len(self.errors)} "
            f"missing={self.missing!r} complete={self.complete}>"
        )
