"""The user's own settings and labels: display name, keyboard shortcuts, label create/rename/colour/delete."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from mailbox.models import Label, Mailbox
from mailsite.events import domain_event_record
from mailsite.models import DomainEvent
from mailsite.realtime import mailbox_publish_on_commit

# The colours a label can take: a fixed palette readable with white or black text on it.
LABEL_COLOURS = (
    ("", "None"),
    ("#d93025", "Red"),
    ("#e37400", "Orange"),
    ("#f9ab00", "Yellow"),
    ("#188038", "Green"),
    ("#1a73e8", "Blue"),
    ("#9334e6", "Purple"),
    ("#5f6368", "Grey"),
)


@transaction.atomic
def mailbox_settings_update(
    *,
    mailbox: Mailbox,
    display_name: str,
    keyboard_shortcuts: bool,
    signature: str | None = None,
    remote_images: str | None = None,
) -> Mailbox:
    """Save the user's settings; ``None`` leaves a setting as it is."""
    mailbox.display_name = " ".join(display_name.split())
    mailbox.keyboard_shortcuts = keyboard_shortcuts
    if signature is not None:
        mailbox.signature = signature.replace("\r\n", "\n").strip()
    if remote_images is not None:
        mailbox.remote_images = remote_images
    mailbox.full_clean()
    mailbox.save(update_fields=["display_name", "keyboard_shortcuts", "signature", "remote_images"])
    return mailbox


def _clean_name(mailbox: Mailbox, name: str, *, except_id: int | None = None) -> str:
    name = " ".join(name.split())
    if not name:
        raise ValidationError({"name": "Give the label a name."})
    clash = Label.objects.annotate(lower=Lower("name")).filter(mailbox=mailbox, lower=name.lower())
    if clash.exclude(pk=except_id).exists():
        raise ValidationError({"name": f"There is already a label called “{name}”."})
    return name


def _save(label: Label) -> Label:
    label.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            label.save()
    except IntegrityError as exc:
        # Created meanwhile in another tab: the unique constraint kept one.
        raise ValidationError({"name": f"There is already a label called “{label.name}”."}) from exc
    return label


def user_label_create(*, mailbox: Mailbox, name: str, colour: str = "") -> Label:
    """A new user label; a name already used (any case) is refused."""
    position = Label.objects.filter(mailbox=mailbox).count()
    return _save(Label(mailbox=mailbox, name=_clean_name(mailbox, name), colour=colour, position=position))


def user_label_update(*, label: Label, name: str, colour: str) -> Label:
    """Rename and recolour a user label; system folders keep their names."""
    if label.is_system:
        raise ValidationError("System folders cannot be renamed.")
    label.name = _clean_name(label.mailbox, name, except_id=label.pk)
    label.colour = colour
    return _save(label)


@transaction.atomic
def user_label_delete(*, label: Label) -> None:
    """Delete a user label: its messages stay, only the label goes from them.

    One ``label.deleted`` event, not one per thread: a label on thousands of threads would
    otherwise make every open tab refetch thousands of rows. Once committed, open tabs drop the
    label's sidebar entry, chips and menu options themselves."""
    if label.is_system:
        raise ValidationError("System folders cannot be deleted.")
    label_id, mailbox_id = label.pk, label.mailbox_id
    label.delete()
    event = domain_event_record(
        event_type=DomainEvent.Type.LABEL_DELETED,
        subject_type="label",
        subject_id=label_id,
        mailbox_id=mailbox_id,
        payload={"label_id": label_id},
    )
    live = {"type": "label.deleted", "label_id": label_id, "event_id": event.id}
    mailbox_publish_on_commit(mailbox_id=mailbox_id, event=live)
