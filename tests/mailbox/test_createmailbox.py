import pytest
from django.core.management import CommandError, call_command

from mailbox.models import Domain, Label, Mailbox


@pytest.mark.django_db
def test_creates_user_mailbox_domain_and_system_labels(client):
    call_command("createmailbox", "Dana@Example.COM", password="a long enough passphrase", display_name="Dana")

    mailbox = Mailbox.objects.get(address="dana@example.com")
    assert mailbox.display_name == "Dana"
    assert Domain.objects.filter(name="example.com").exists()
    assert set(Label.objects.filter(mailbox=mailbox).values_list("role", flat=True)) == {
        "inbox",
        "sent",
        "drafts",
        "spam",
        "trash",
    }
    assert client.login(username="dana@example.com", password="a long enough passphrase")


@pytest.mark.django_db
def test_second_mailbox_on_a_domain_reuses_it():
    call_command("createmailbox", "a@example.com", password="a long enough passphrase")
    call_command("createmailbox", "b@example.com", password="a long enough passphrase")
    assert Domain.objects.filter(name="example.com").count() == 1


@pytest.mark.django_db
def test_existing_address_is_refused():
    call_command("createmailbox", "a@example.com", password="a long enough passphrase")
    with pytest.raises(CommandError, match="already exists"):
        call_command("createmailbox", "A@example.com", password="a long enough passphrase")


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("address", "password", "message"),
    [
        ("not-an-address", "a long enough passphrase", "valid email"),
        ("c@example.com", "123", "Password rejected"),
    ],
)
def test_bad_input_gets_a_clear_error_and_creates_nothing(address, password, message):
    with pytest.raises(CommandError, match=message):
        call_command("createmailbox", address, password=password)
    assert not Mailbox.objects.exists()
