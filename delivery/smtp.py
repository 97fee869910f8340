"""The inbound SMTP listener's protocol side, on aiosmtpd.

Transport only: which recipients are ours and what "accepted" means are callables handed in by
the ``runsmtpd`` command, so this module never imports the mailbox app. Only aiosmtpd's ``smtp``
and ``controller`` modules are used (``aiosmtpd.handlers`` does ``import mailbox`` and would get
our app).

Database work never runs on the event loop: each check and each accept runs in a worker thread,
with Django's connection hygiene around it, as a request would.
"""

import enum
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import structlog
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from asgiref.sync import sync_to_async
from django.db import close_old_connections

logger = structlog.get_logger(__name__)

T = TypeVar("T")

TEMPORARY_FAILURE = "451 4.3.0 Temporary failure on our side, please try again later"


class RecipientStatus(enum.Enum):
    LOCAL = "local"  # a mailbox or alias of ours
    UNKNOWN = "unknown"  # one of our domains, but nobody by that name
    FOREIGN = "foreign"  # not our domain: relaying is refused


@dataclass(frozen=True)
class SMTPArrival:
    """One message as the SMTP transaction handed it over, ready to be stored."""

    raw: bytes
    envelope_sender: str
    envelope_recipients: tuple[str, ...]
    event_id: str
    extras: dict[str, Any] = field(default_factory=dict)


def smtp_event_id(*, raw: bytes, envelope_sender: str, envelope_recipients: tuple[str, ...]) -> str:
    """A stable id for one arrival: the exact bytes and the envelope.

    A sending MTA that resends its queued file (it lost our 250, or timed out waiting for it)
    produces the same id, so the receipt's unique constraint makes the resend change nothing.
    """
    digest = hashlib.sha256()
    digest.update(envelope_sender.lower().encode("utf-8", "surrogateescape") + b"\0")
    for recipient in sorted(r.lower() for r in envelope_recipients):
        digest.update(recipient.encode("utf-8", "surrogateescape") + b"\n")
    digest.update(b"\0" + raw)
    return digest.hexdigest()


def _with_fresh_connections(function: Callable[..., T], *args: object) -> T:
    """Run ``function`` in a worker thread the way Django runs a request: drop a broken or
    expired database connection before and after (``CONN_MAX_AGE`` is honoured)."""
    close_old_connections()
    try:
        return function(*args)
    finally:
        close_old_connections()


async def _in_thread(function: Callable[..., T], *args: object) -> T:
    return await sync_to_async(_with_fresh_connections, thread_sensitive=False)(function, *args)


class InboundSMTPHandler:
    """aiosmtpd handler: RCPT only for our recipients, DATA answered 250 only once stored.

    ``recipient_status(address)`` says whether an address is ours; ``accept(arrival)`` must store
    the bytes and the receipt durably (committed) before returning, and may raise on a temporary
    failure, which the sender hears as a 451 and retries. Both are blocking and run in threads.
    """

    def __init__(
        self,
        *,
        recipient_status: Callable[[str], RecipientStatus],
        accept: Callable[[SMTPArrival], object],
        max_recipients: int = 100,
    ) -> None:
        self._recipient_status = recipient_status
        self._accept = accept
        self._max_recipients = max_recipients

    async def handle_RCPT(  # aiosmtpd's hook names
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if len(envelope.rcpt_tos) >= self._max_recipients:
            return "452 4.5.3 Too many recipients"
        if "@" not in address.strip("@"):
            return f"550 5.1.3 <{address}>: a recipient needs a domain"
        try:
            status = await _in_thread(self._recipient_status, address)
        except Exception:
            logger.exception("smtp.recipient_check_failed", recipient=address, peer=_peer(session))
            return TEMPORARY_FAILURE
        if status is RecipientStatus.FOREIGN:
            logger.info("smtp.relay_refused", recipient=address, peer=_peer(session))
            return f"550 5.7.1 <{address}>: relaying denied"
        if status is RecipientStatus.UNKNOWN:
            logger.info("smtp.unknown_recipient", recipient=address, peer=_peer(session))
            return f"550 5.1.1 <{address}>: no such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        # "<>" is the null reverse-path of bounces and auto-replies: no sender to answer.
        sender = "" if envelope.mail_from in (None, "<>") else envelope.mail_from
        recipients = tuple(envelope.rcpt_tos)
        arrival = SMTPArrival(
            raw=raw,
            envelope_sender=sender,
            envelope_recipients=recipients,
            event_id=smtp_event_id(raw=raw, envelope_sender=sender, envelope_recipients=recipients),
            extras={"peer": _peer(session), "helo": session.host_name or ""},
        )
        try:
            await _in_thread(self._accept, arrival)
        except Exception:
            logger.exception("smtp.accept_failed", peer=_peer(session), size=len(raw))
            return TEMPORARY_FAILURE
        return f"250 2.0.0 OK: queued as {arrival.event_id[:16]}"


def _peer(session: Session) -> str:
    peer = session.peer
    return str(peer[0]) if isinstance(peer, tuple) and peer else str(peer or "")


def smtp_controller(
    *,
    handler: InboundSMTPHandler,
    host: str,
    port: int,
    max_message_bytes: int,
    server_hostname: str = "",
) -> Controller:
    """The listener, not yet started: ``start()`` serves in a background thread, ``stop()`` ends it.

    SIZE is advertised with ``max_message_bytes``; a larger message is refused with 552, before
    DATA when the client declares its size, after it otherwise.
    """
    return Controller(
        handler,
        hostname=host,
        port=port,
        server_hostname=server_hostname or None,
        data_size_limit=max_message_bytes,
        decode_data=False,
    )
