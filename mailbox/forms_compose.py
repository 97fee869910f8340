"""The compose form: what a draft holds, as typed. Addresses are checked by the service layer and
reported beside the fields; they never stop a draft from being saved."""

from django import forms

from mailbox.models import Draft
from mailbox.services.drafts import DraftFields


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
    # zone; it is taken as UTC (TIME_ZONE), which the label says.
    send_at = forms.DateTimeField(
        required=False,
        label="Send later (UTC)",
        help_text="Leave empty to send now; pick a time to schedule the message instead.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        error_messages={"invalid": "Enter a date and time such as 2026-12-01 09:30."},
    )
    version = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

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
    def for_draft(cls, draft: Draft) -> "DraftForm":
        fields = ("to", "cc", "bcc", "subject", "body", "body_format", "version")
        return cls(initial={name: getattr(draft, name) for name in fields})
