"""The compose form: what a draft holds, as typed. Addresses are checked by the service layer and
reported beside the fields; they never stop a draft from being saved."""

from typing import Any
from zoneinfo import ZoneInfo

from django import forms
from django.utils import timezone

from mailbox.models import Draft, Mailbox
from mailbox.services.drafts import DraftFields
from mailbox.services.preferences import mailbox_zone


class DraftForm(forms.Form):
    to = forms.CharField(required=False, label="To", widget=forms.TextInput(attrs={"autocomplete": "off"}))
    cc = forms.CharField(required=False, label="Cc", widget=forms.TextInput(attrs={"autocomplete": "off"}))
    bcc = forms.CharField(required=False, label="Bcc", widget=forms.TextInput(attrs={"autocomplete": "off"}))
    subject = forms.CharField(required=False, label="Subject", strip=False)
    body = forms.CharField(required=False, label="Message", strip=False, widget=forms.Textarea(attrs={"rows": 16}))
    body_format = forms.ChoiceField(
        choices=Draft.BodyFormat.choices,
        initial=Draft.BodyFormat.PLAIN,
        label="Format",
        help_text="Simple formatting: *italic*, **bold**, lists with - or 1., > quotes, [links](https://…).",
    )
    # Not part of the draft: read when Send is pressed. The browser's datetime-local value has no
    # zone; it is taken in the mailbox's time zone (else the browser's, else UTC), which the label says.
    send_at = forms.DateTimeField(
        required=False,
        label="Send later",
        help_text="Leave empty to send now; pick a time to schedule the message instead.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Enter a date and time such as 2026-12-01 09:30."},
    )
    version = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)
    # Filled by timezone.js with the browser's IANA zone: used while the mailbox has none set.
    browser_timezone = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, mailbox: Mailbox | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.mailbox = mailbox
        chosen = mailbox.timezone if mailbox is not None else ""
        self.fields["send_at"].label = f"Send later ({chosen or 'UTC'})"
        # timezone.js names the browser's zone in the label where the mailbox has none.
        self.fields["send_at"].widget.attrs["data-zone-chosen"] = "1" if chosen else "0"

    def send_zone(self) -> ZoneInfo:
        """The zone a Send later time is read in (see ``mailbox_zone``)."""
        browser = str(self.data.get("browser_timezone", "")) if self.is_bound else ""
        return mailbox_zone(mailbox=self.mailbox, browser_zone=browser) if self.mailbox else ZoneInfo("UTC")

    def full_clean(self) -> None:
        # Django reads a naive date-time in the current zone (and refuses one a DST change skips
        # or repeats there): make that the user's zone while the form is cleaned.
        with timezone.override(self.send_zone()):
            super().full_clean()

    def draft_fields(self) -> DraftFields:
        data = self.cleaned_data
        return DraftFields(
            to=data["to"],
            cc=data["cc"],
            bcc=data["bcc"],
            subject=data["subject"],
            body=data["body"].replace("\r\n", "\n"),
            body_format=data["body_format"],
        )

    @classmethod
    def for_draft(cls, draft: Draft, *, mailbox: Mailbox | None = None) -> "DraftForm":
        fields = ("to", "cc", "bcc", "subject", "body", "body_format", "version")
        return cls(initial={name: getattr(draft, name) for name in fields}, mailbox=mailbox)
