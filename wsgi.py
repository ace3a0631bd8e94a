"""WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py wsgi:app`."""

from flask import Flask

from proxy.config import Settings
from proxy.logs import configure
from proxy.web.app import create_app
from proxy.web.server import load_app


def _app() -> Flask:
    settings = Settings.from_env()
    # gunicorn.conf.py configures logging in the master; a gunicorn started without it gets the
    # same lines from the workers.
    configure(settings, gunicorn=True)
    return create_app(settings)


app = load_app(_app)
