"""A real Django email backend whose answers a test scripts: the controllable failing ESP.

The script is a file of one outcome per line, consumed one per message: ``ok``, an SMTP reply
such as ``421 4.7.0 try again later`` or ``550 5.1.1 no such user`` (raised the way ``smtplib``
raises a refusal), ``disconnect`` (the connection drops), ``hang`` (the send blocks, for a test
that kills the worker mid-send), an ESP API answer ``http 429 Too Many Requests`` (raised as
Anymail raises an ESP's HTTP error) or ``esp rejected`` (the ESP accepts the call but reports
the recipient rejected, as Anymail's ``anymail_status`` says). With the script used up, every message is accepted. Every
message handed to it is logged in the log file (recipient and Message-ID) before the outcome is
applied, so a test counts what reached the "ESP", across processes. Files, not memory: the
backend also runs inside real Celery workers.
"""

import json
import os
import smtplib
import threading
import time
from pathlib import Path

import requests
from anymail.exceptions import AnymailAPIError
from anymail.message import AnymailRecipientStatus, AnymailStatus
from django.core.mail.backends.base import BaseEmailBackend

SCRIPT_ENV = "MAILSITE_TEST_SCRIPT"
_files_lock = threading.Lock()
LOG_ENV = "MAILSITE_TEST_SEND_LOG"


class ScriptedBackend(BaseEmailBackend):
    opened = 0

    def open(self) -> bool:
        with _files_lock:
            ScriptedBackend.opened += 1
        return True

    def send_messages(self, email_messages: list) -> int:
        for message in email_messages:
            self._send(message)
        return len(email_messages)

    def _send(self, message) -> None:
        with _files_lock:  # a batch's connections run in threads: one log line and outcome at a time
            outcome = self._log_and_take(message)
        self._apply(message, outcome)

    def _log_and_take(self, message) -> str:
        log = Path(os.environ[LOG_ENV])
        with log.open("a") as handle:
            entry = {
                "to": message.recipients(),
                "message_id": message.extra_headers.get("Message-ID"),
                "pid": os.getpid(),
            }
            handle.write(json.dumps(entry) + "\n")
        return _next_outcome()

    def _apply(self, message, outcome: str) -> None:
        if outcome == "ok":
            return
        if outcome == "hang":
            time.sleep(3600)
        if outcome == "disconnect":
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if outcome.startswith("http "):
            _, code, text = outcome.split(" ", 2)
            raise AnymailAPIError(
                "Scripted ESP refused the send", status_code=int(code), response=_response(code, text)
            )
        if outcome.startswith("esp "):
            status = AnymailStatus()
            recipient_status = AnymailRecipientStatus(message_id="scripted-1", status=outcome.split(" ", 1)[1])
            status.set_recipient_status({message.recipients()[0]: recipient_status})
            message.anymail_status = status
            return
        code, _, text = outcome.partition(" ")
        raise smtplib.SMTPRecipientsRefused({message.recipients()[0]: (int(code), text.encode())})


def _response(code: str, text: str) -> requests.Response:
    """The HTTP answer Anymail attaches to the error it raises for an ESP's non-2xx reply."""
    response = requests.Response()
    response.status_code, response.reason = int(code), text
    response._content = json.dumps({"message": text}).encode()
    return response


def _next_outcome() -> str:
    script = Path(os.environ[SCRIPT_ENV])
    lines = script.read_text().splitlines() if script.exists() else []
    if not lines:
        return "ok"
    script.write_text("".join(f"{line}\n" for line in lines[1:]))
    return lines[0]


def sends_logged(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
