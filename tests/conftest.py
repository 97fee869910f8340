"""Shared fixtures. Test data is built with the domain's own services, never raw saves."""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CORPORA = REPO_ROOT.parent / "shared" / "corpora"

# Tests never need a real secret; CI sets DATABASE_URL, which makes SECRET_KEY mandatory.
os.environ.setdefault("SECRET_KEY", "test-only-secret-key-not-for-production-" + "x" * 20)

requires_redis = pytest.mark.skipif(
    not os.environ.get("REDIS_URL"),
    reason="needs a real Redis (broker, worker or channel layer): set REDIS_URL; CI always does",
)


@pytest.fixture(autouse=True)
def _mail_storage_in_tmp(settings, tmp_path: Path) -> None:
    """Each test writes raw mail into its own folder, never into var/."""
    settings.STORAGES = {
        **settings.STORAGES,
        "mail": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "mail"), "allow_overwrite": True},
        },
    }


@pytest.fixture
def mailbox(db):
    from mailbox.services import mailbox_create

    return mailbox_create(address="alice@example.test", password="correct horse battery staple", display_name="Alice")


@pytest.fixture
def other_mailbox(db):
    from mailbox.services import mailbox_create

    return mailbox_create(address="bob@example.test", password="correct horse battery staple", display_name="Bob")
