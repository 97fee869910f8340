"""The user's own settings and labels: display name, keyboard shortcuts, time zone, label
create/rename/colour/delete."""

from functools import cache, lru_cache
from zoneinfo import ZoneInfo, available_timezones

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models.functions import Lower

from mailbox.models import Label, Mailbox
from mailbox.services.labels import label_changed_notify
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
    timezone: str | None = None,
) -> Mailbox:
    """Save the user's settings; ``None`` leaves a setting as it is. A time zone must be an IANA
    name zoneinfo knows (``""``: none chosen, the browser's or UTC)."""
    mailbox.display_name = " ".join(display_name.split())
    mailbox.keyboard_shortcuts = keyboard_shortcuts
    if signature is not None:
        mailbox.signature = signature.replace("\r\n", "\n").strip()
    if remote_images is not None:
        mailbox.remote_images = remote_images
    if timezone is not None:
        if timezone and not timezone_is_known(timezone):
            raise ValidationError({"timezone": f"Unknown time zone “{timezone}”: pick one from the list."})
        mailbox.timezone = timezone
    mailbox.full_clean()
    mailbox.save(update_fields=["display_name", "keyboard_shortcuts", "signature", "remote_images", "timezone"])
    return mailbox


@cache
def timezone_names() -> tuple[str, ...]:
    """The IANA zone names this system's zoneinfo knows, sorted (read once per process)."""
    return tuple(sorted(available_timezones()))


def timezone_is_known(name: str) -> bool:
    return name in timezone_names()


def mailbox_timezone_default(*, mailbox: Mailbox, name: str) -> None:
    """Adopt ``name`` (a zone the browser reported) as the mailbox's time zone if it has none yet;
    one chosen in Settings, even meanwhile in another tab, is never replaced."""
    if timezone_is_known(name):
        Mailbox.objects.filter(pk=mailbox.pk, timezone="").update(timezone=name)
        mailbox.refresh_from_db(fields=["timezone"])


def mailbox_zone(*, mailbox: Mailbox, browser_zone: str = "") -> ZoneInfo:
    """The zone a user's wall-clock times mean: the mailbox's setting, else the zone the browser
    reported (checked like the setting), else UTC."""
    for name in (mailbox.timezone, browser_zone):
        zone = zone_named(name)
        if zone is not None:
            return zone
    return ZoneInfo("UTC")


@lru_cache(maxsize=256)
def zone_named(name: str) -> ZoneInfo | None:
    """The zone called ``name``, ``None`` for an unknown name: remembered per name, as every
    request of a logged-in user asks (``mailbox.middleware``) and the check scans every zone name."""
    return ZoneInfo(name) if name and timezone_is_known(name) else None


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


@transaction.atomic
def user_label_create(*, mailbox: Mailbox, name: str, colour: str = "") -> Label:
    """A new user label; a name already used (any case) is refused. Once committed, open tabs
    show it in their sidebar and label menus (``label.changed``)."""
    position = Label.objects.filter(mailbox=mailbox).count()
    label = _save(Label(mailbox=mailbox, name=_clean_name(mailbox, name), colour=colour, position=position))
    label_changed_notify(label)
    return label


@transaction.atomic
def user_label_update(*, label: Label, name: str, colour: str) -> Label:
    """Rename and recolour a user label; system folders keep their names. Once committed, open
    tabs redraw its sidebar entry, menu options and chips (``label.changed``)."""
    if label.is_system:
        raise ValidationError("System folders cannot be renamed.")
    label.name = _clean_name(label.mailbox, name, except_id=label.pk)
    label.colour = colour
    label = _save(label)
    label_changed_notify(label)
    return label


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
