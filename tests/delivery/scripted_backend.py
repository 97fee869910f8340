"""A real Django email backend whose answers a test scripts: the controllable failing ESP.

The script is a file of one outcome per line, consumed one per message: ``ok``, an SMTP reply
such as ``421 4.7.0 try again later`` or ``550 5.1.1 no such user`` (raised the way ``smtplib``
raises a refusal), ``disconnect`` (the connection drops) or ``hang`` (the send blocks, for a test
that kills the worker mid-send). With the script used up, every message is accepted. Every
message handed to it is logged in the log file (recipient and Message-ID) before the outcome is
applied, so a test counts what reached the "ESP", across processes. Files, not memory: the
backend also runs inside real Celery workers.
"""

import json
import os
import smtplib
import time
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend

SCRIPT_ENV = "MAILSITE_TEST_SCRIPT"
LOG_ENV = "MAILSITE_TEST_SEND_LOG"


class ScriptedBackend(BaseEmailBackend):
    opened = 0

    def open(self) -> bool:
        ScriptedBackend.opened += 1
        return True

    def send_messages(self, email_messages: list) -> int:
        for message in email_messages:
            self._send(message)
        return len(email_messages)

    def _send(self, message) -> None:
        log = Path(os.environ[LOG_ENV])
        with log.open("a") as handle:
            entry = {
                "to": message.recipients(),
                "message_id": message.extra_headers.get("Message-ID"),
                "pid": os.getpid(),
            }
            handle.write(json.dumps(entry) + "\n")
        outcome = _next_outcome()
        if outcome == "ok":
            return
        if outcome == "hang":
            time.sleep(3600)
        if outcome == "disconnect":
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        code, _, text = outcome.partition(" ")
        raise smtplib.SMTPRecipientsRefused({message.recipients()[0]: (int(code), text.encode())})


def _next_outcome() -> str:
    script = Path(os.environ[SCRIPT_ENV])
    lines = script.read_text().splitlines() if script.exists() else []
    if not lines:
        return "ok"
    script.write_text("".join(f"{line}\n" for line in lines[1:]))
    return lines[0]


def sends_logged(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
