"""Where tactor's names meet NATS: subjects, stream, consumer and bucket names.

Mailbox, endpoint, provider and queue names are plain strings made by the
runtime (``ep:svc.Counter``, ``pv:9f…``). NATS gives ``.`` a meaning in subjects
and forbids it (with ``*``, ``>``, spaces and more) in stream, consumer and
bucket names, so every name becomes one *token*: letters, digits, ``_`` and ``-``
stay, any other byte is written ``=XX`` (its hex). A token is valid in a
subject, a stream or consumer name and a key of a KV bucket, and two names
never share one. KV bucket *names* take only the plain characters, so the
prefix, which begins every bucket's name, must be made of them alone.
"""

from __future__ import annotations

import functools
import re

from ...errors import ConfigError

__all__ = ["Names", "token", "untoken"]

_PLAIN = re.compile(r"[A-Za-z0-9_\-]")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_\-]+")


@functools.lru_cache(maxsize=4096)  # every message names its subject: make each once
def token(name: str) -> str:
    """``name`` as one NATS token (reversible: ``=`` itself is escaped)."""
    return "".join(
        ch if _PLAIN.match(ch) else "".join(f"={b:02X}" for b in ch.encode()) for ch in name
    )


def untoken(tok: str) -> str:
    """The name :func:`token` made ``tok`` of."""
    return re.sub(
        r"(?:=[0-9A-F]{2})+", lambda m: bytes.fromhex(m.group().replace("=", "")).decode(), tok
    )


class Names:
    """The subjects and names of one namespace (the URL's ``prefix``)."""

    def __init__(self, prefix: str) -> None:
        if not _PLAIN_NAME.fullmatch(prefix):
            raise ConfigError(
                f"NATS prefix {prefix!r}: use letters, digits, _ and - only (it begins the "
                "names of tactor's streams and key-value buckets, which take no others)"
            )
        self.prefix = prefix
        self.subject_root = token(prefix)  # one token: a prefix never splits into subject levels
        self.stream_root = token(prefix)
        self.mailboxes = f"{self.stream_root}_mb"  # work-queue stream of every mailbox
        self.dead = f"{self.stream_root}_dl"  # limits stream of every dead letter
        self.queues = f"{self.stream_root}_q"  # work-queue stream of every queue
        self.registry = f"{self.stream_root}_reg"  # KV bucket: one key per node, its beat
        self.registered = f"{self.stream_root}_pv"  # KV bucket: one key per provider
        self.unfinished = f"{self.stream_root}_qc"  # KV bucket: queues' unfinished counts
        # Two tokens after "mb": no mailbox's subject (one token) is ever it.
        self.keeper = f"{self.subject_root}.mb.keeper.last-block"

    def subject(self, kind: str, name: str) -> str:
        return f"{self.subject_root}.{kind}.{token(name)}"

    def all_of(self, kind: str) -> str:
        return f"{self.subject_root}.{kind}.>"

    def mailbox(self, mailbox: str) -> str:
        """The subject deliveries go to: the one the mailbox's bound (a per-subject limit)
        holds to."""
        return f"{self.subject('mb', mailbox)}.m"

    def replayed(self, mailbox: str, letter: str) -> str:
        """The subject of one replayed dead letter: a subject of its own, so that a replay
        is never refused for room, as on the other transports."""
        return f"{self.subject('mb', mailbox)}.r{letter}"

    def mailbox_of(self, subject: str) -> str:
        """What :meth:`mailbox` and :meth:`replayed` share: the mailbox's part of the subject."""
        return subject.rpartition(".")[0]

    def every_subject_of(self, mailbox: str) -> str:
        """The filter of the mailbox's subjects: its consumer's, its purge's."""
        return f"{self.subject('mb', mailbox)}.>"

    def dead_letters(self, mailbox: str) -> str:
        return self.subject("dl", mailbox)

    def queue(self, queue: str) -> str:
        return self.subject("q", queue)

    def inbox(self, inbox: str) -> str:
        return self.subject("in", inbox)

    def events(self) -> str:
        """The subject under which topics go, one topic segment per subject token."""
        return f"{self.subject_root}.ev"

    @staticmethod
    def durable(kind: str, name: str) -> str:
        return f"{kind}_{token(name)}"
