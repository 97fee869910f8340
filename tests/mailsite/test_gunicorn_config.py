"""The web process's gunicorn settings (``gunicorn.conf.py``, read by production and the bench alike)."""

import runpy
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


def test_workers_keep_connections_alive(monkeypatch):
    for name in ("WEB_CONCURRENCY", "WEB_THREADS", "WEB_KEEPALIVE"):
        monkeypatch.delenv(name, raising=False)

    config = runpy.run_path(str(CONFIG))

    # Sync workers close every connection after one response; gthread workers keep it open.
    assert config["worker_class"] == "gthread"
    assert config["keepalive"] > 0
    assert config["workers"] >= 1
    assert config["threads"] > 1


def test_the_environment_sizes_the_server(monkeypatch):
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("WEB_THREADS", "6")
    monkeypatch.setenv("WEB_KEEPALIVE", "75")

    config = runpy.run_path(str(CONFIG))

    assert (config["workers"], config["threads"], config["keepalive"]) == (3, 6, 75)
