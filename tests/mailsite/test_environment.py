"""The two configuration modes, the production checks, and imports from the repository root.

Each case runs in a fresh interpreter started from the repository root, as every real process
is, with an environment built for the case: settings are read once, at import.
"""

import json
import os
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from tests.conftest import REPO_ROOT

PRODUCTION_ENV = {
    "DATABASE_URL": "postgres://mailsite@db.internal:5432/mailsite",
    "REDIS_URL": "redis://cache.internal:6379/0",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-enough-1234567890-abcdef",
    "ALLOWED_HOSTS": "mail.example.com",
    "MAIL_STORAGE_BUCKET": "mailsite-raw",
    "ANYMAIL_WEBHOOK_SECRET": "esp:a-long-random-webhook-password",
}

SETTINGS_PROBE = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "engine": s.DATABASES["default"]["ENGINE"],
    "layer": s.CHANNEL_LAYERS["default"]["BACKEND"],
    "eager": s.CELERY_TASK_ALWAYS_EAGER,
    "broker": s.CELERY_BROKER_URL,
    "mail_storage": s.STORAGES["mail"]["BACKEND"],
    "mail_location": s.STORAGES["mail"].get("OPTIONS", {}).get("location", ""),
    "cache": s.CACHES["default"]["BACKEND"],
    "debug": s.DEBUG,
    "secure_cookies": s.SESSION_COOKIE_SECURE and s.CSRF_COOKIE_SECURE,
    "image_proxy": [
        s.MAILSITE_IMAGE_PROXY_TIMEOUT, s.MAILSITE_IMAGE_PROXY_MAX_BYTES, s.MAILSITE_IMAGE_PROXY_TOKEN_MAX_AGE
    ],
}))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    """The machine's environment without any Mailsite setting, plus ``extra``."""
    names = {*PRODUCTION_ENV, "DEBUG", "CELERY_BROKER_URL", "MAILSITE_VAR_DIR", "CELERY_TASK_ALWAYS_EAGER"}
    env = {k: v for k, v in os.environ.items() if k not in names}
    env["DJANGO_SETTINGS_MODULE"] = "mailsite.settings"
    return {**env, **extra}


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


def _settings(env: dict[str, str]) -> dict:
    result = _run([sys.executable, "-c", SETTINGS_PROBE], env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_embedded_mode_needs_no_services(tmp_path: Path):
    found = _settings(_clean_env(MAILSITE_VAR_DIR=str(tmp_path)))

    assert found["engine"] == "mailsite.embedded_db"
    assert found["layer"] == "channels.layers.InMemoryChannelLayer"
    assert found["eager"] is True
    assert found["mail_storage"] == "delivery.storage.DurableFileSystemStorage"
    assert found["mail_location"] == str(tmp_path / "mail")
    assert found["debug"] is True
    assert found["image_proxy"] == [8.0, 5 * 1024 * 1024, 7 * 24 * 3600]
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


def test_production_mode_uses_the_configured_services():
    image_proxy = {
        "MAILSITE_IMAGE_PROXY_TIMEOUT": "2.5",
        "MAILSITE_IMAGE_PROXY_MAX_BYTES": "1048576",
        "MAILSITE_IMAGE_PROXY_TOKEN_MAX_AGE": "3600",
    }
    found = _settings(_clean_env(**PRODUCTION_ENV, **image_proxy))

    assert found["engine"] == "django.db.backends.postgresql"
    assert found["layer"] == "channels_redis.core.RedisChannelLayer"
    assert found["eager"] is False
    assert found["broker"] == PRODUCTION_ENV["REDIS_URL"]
    assert found["mail_storage"] == "storages.backends.s3.S3Storage"
    assert found["cache"] == "mailsite.cache.RedisCache"  # Django's, one client per pool
    assert found["debug"] is False
    assert found["secure_cookies"] is True
    assert found["image_proxy"] == [2.5, 1048576, 3600]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}, "SECRET_KEY must be set"),
        ({**PRODUCTION_ENV, "DATABASE_URL": "sqlite:///db.sqlite3"}, "must point at PostgreSQL"),
    ],
)
def test_unsafe_production_settings_are_refused(env: dict[str, str], message: str):
    result = _run([sys.executable, "-c", SETTINGS_PROBE], _clean_env(**env))
    assert result.returncode != 0
    assert message in result.stderr


def test_deploy_check_is_clean_with_production_settings():
    result = _run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], _clean_env(**PRODUCTION_ENV)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues (0 silenced)." in result.stdout


def test_deploy_check_fails_when_webhooks_have_no_secret():
    env = _clean_env(**{k: v for k, v in PRODUCTION_ENV.items() if k != "ANYMAIL_WEBHOOK_SECRET"})
    result = _run([sys.executable, "manage.py", "check", "--deploy"], env)
    assert result.returncode != 0
    assert "mailsite.E001" in result.stdout + result.stderr


def test_deploy_check_only_warns_about_the_webhook_secret_in_debug_mode(tmp_path: Path):
    result = _run([sys.executable, "manage.py", "check", "--deploy"], _clean_env(MAILSITE_VAR_DIR=str(tmp_path)))
    assert "mailsite.W001" in result.stdout + result.stderr
    assert "mailsite.E001" not in result.stdout + result.stderr


def test_embedded_postgres_starts_migrates_and_answers(tmp_path: Path):
    """The run command's database: a private server under var/, started on first use."""
    env = _clean_env(MAILSITE_VAR_DIR=str(tmp_path / "var"))
    migrate = _run([sys.executable, "manage.py", "migrate", "--no-input"], env)
    assert migrate.returncode == 0, migrate.stderr
    query = _run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.db import connection as c; "
            "c.ensure_connection(); print(c.pg_version, c.settings_dict['ENGINE'])",
        ],
        env,
    )
    assert query.returncode == 0, query.stderr
    version, engine = query.stdout.split()
    assert int(version) >= 180000
    assert engine == "mailsite.embedded_db"
    assert (tmp_path / "var" / "pgdata" / "PG_VERSION").exists()


def _third_party_modules() -> list[str]:
    """Top-level modules of every distribution named in requirements.txt."""
    wanted = set()
    for line in (REPO_ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            wanted.add(Requirement(line).name.lower().replace("_", "-"))
    modules = [
        module
        for module, dists in packages_distributions().items()
        if any(d.lower().replace("_", "-") in wanted for d in dists) and module.isidentifier()
    ]
    # The parts of aiosmtpd we use; aiosmtpd.handlers does "import mailbox" and would get our app.
    return [*sorted(modules), "aiosmtpd.smtp", "aiosmtpd.controller", "storages.backends.s3", "anymail.webhooks"]


def test_every_third_party_module_imports_from_the_repository_root():
    modules = _third_party_modules()
    assert {"django", "celery", "channels", "anymail", "storages", "aiosmtpd"} <= set(modules)
    script = "import django, importlib; django.setup()\n" + "".join(
        f"importlib.import_module({m!r})\n" for m in modules
    )
    result = _run([sys.executable, "-c", script], _clean_env(**PRODUCTION_ENV))
    assert result.returncode == 0, result.stderr


def test_import_mailbox_from_the_repository_root_gives_our_app():
    """The clash the stdlib helper exists for is real: the app shadows the standard module."""
    result = _run([sys.executable, "-c", "import mailbox; print(mailbox.__file__)"], _clean_env())
    assert result.stdout.strip() == str(REPO_ROOT / "mailbox" / "__init__.py")
