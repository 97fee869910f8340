"""Forms of the mailbox pages: they turn POSTed fields into clean values or clear messages."""

from typing import Any

from django import forms

from mailbox.models import Mailbox
from mailbox.navigation import local_path
from mailbox.services.bulk import ACTIONS
from mailbox.services.preferences import LABEL_COLOURS, timezone_names

MAX_THREADS_PER_ACTION = 500


class _SelectedThreadsForm(forms.Form):
    """The threads selected in a list (repeated ``thread`` fields) and where to go back to."""

    thread = forms.CharField(required=False)  # repeated: read with getlist in clean_thread
    next = forms.CharField(required=False, max_length=2000)

    def clean_thread(self) -> list[int]:
        values = self.data.getlist("thread") if hasattr(self.data, "getlist") else []
        try:
            ids = sorted({int(v) for v in values if v})
        except ValueError as exc:
            raise forms.ValidationError("Those conversations could not be read.") from exc
        if len(ids) > MAX_THREADS_PER_ACTION:
            raise forms.ValidationError(f"Select at most {MAX_THREADS_PER_ACTION} conversations at a time.")
        return ids

    def safe_next(self, fallback: str) -> str:
        """The relative URL to return to: only a path on this site (no scheme, no other host)."""
        target = (self.cleaned_data.get("next") or "") if hasattr(self, "cleaned_data") else ""
        return local_path(target or self.data.get("next", "")) or fallback


class ThreadActionForm(_SelectedThreadsForm):
    """A list action on selected threads (the toolbar, a row's star, or a keyboard shortcut)."""

    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    label = forms.IntegerField(required=False, min_value=1)
    # A list's Move menu (the Inbox and user labels), beside its Label menu in the same form.
    move_to = forms.IntegerField(required=False, min_value=1)
    current = forms.CharField(required=False, max_length=20)
    # Delete forever and Empty Trash act only with it; without, the view asks first.
    confirm = forms.BooleanField(required=False)
    # Where the confirmation's Cancel returns (the conversation it was asked from); else ``next``.
    # Unbounded here: a conversation's URL carries its list's, and a long one must not fail the
    # action; the view takes it only as a local path of bounded length (``local_path``).
    cancel = forms.CharField(required=False)

    def clean(self) -> dict:
        data = super().clean()
        if data.get("action") not in (None, "empty_trash") and not data.get("thread"):
            raise forms.ValidationError("Select at least one conversation first.")
        if data.get("action") == "move" and data.get("move_to"):
            data["label"] = data["move_to"]
        if data.get("action") in ("add_label", "remove_label", "move") and not data.get("label"):
            raise forms.ValidationError("Choose a label.")
        return data


class ThreadMergeForm(_SelectedThreadsForm):
    """Merge the selected threads (the list toolbar's "Merge"); ``into`` is the one kept, chosen on
    the confirmation page that a POST without it shows."""

    into = forms.IntegerField(required=False, min_value=1)

    def clean(self) -> dict:
        data = super().clean()
        threads = data.get("thread") or []
        if data.get("into") is not None and data["into"] not in threads:
            raise forms.ValidationError("Choose one of the selected conversations to keep.")
        return data


class LabelForm(forms.Form):
    name = forms.CharField(max_length=100, label="Name")
    colour = forms.ChoiceField(choices=LABEL_COLOURS, required=False, label="Colour")


class SettingsForm(forms.Form):
    display_name = forms.CharField(max_length=255, required=False, label="Display name")
    keyboard_shortcuts = forms.BooleanField(required=False, label="Keyboard shortcuts")
    signature = forms.CharField(
        required=False, max_length=5000, label="Signature", widget=forms.Textarea(attrs={"rows": 4})
    )
    remote_images = forms.ChoiceField(choices=Mailbox.RemoteImages.choices, label="Remote images", required=False)
    timezone = forms.ChoiceField(
        label="Time zone",
        required=False,
        error_messages={"invalid_choice": "Unknown time zone “%(value)s”: pick one from the list."},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # timezone.js preselects the browser's zone while none is chosen.
        self.fields["timezone"].choices = [
            ("", "Not set: the browser's, else UTC"),
            *zip(names := timezone_names(), names, strict=True),
        ]

    def clean_remote_images(self) -> str | None:
        return self.cleaned_data["remote_images"] or None  # not posted: left as it is

    def clean_timezone(self) -> str | None:
        return self.cleaned_data["timezone"] if "timezone" in self.data else None  # not posted: left as it is
