"""Alembic environment: runs migrations on the connection `Database.upgrade` hands in, or, from
the `alembic` command line (alembic.ini at the repository root), on DATABASE_URL."""

from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection

from proxy.config import Settings
from proxy.storage.db import Database
from proxy.storage.models import Base

# SQLite alters tables by copying them ("batch" mode); on PostgreSQL this changes nothing.
OPTIONS = {"target_metadata": Base.metadata, "render_as_batch": True, "compare_type": True}


def run_on(connection: Connection) -> None:
    """Apply the migrations Alembic was asked for on one connection."""
    context.configure(connection=connection, **OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


def run_from_settings() -> None:
    """The command line's way: the database the settings name, as every docschat command uses."""
    url = Settings.from_env().database_url
    if context.is_offline_mode():  # `alembic upgrade head --sql`: print the statements
        context.configure(url=url, literal_binds=True, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    db = Database(url)
    try:
        with db.engine.begin() as connection:
            run_on(connection)
    finally:
        db.dispose()


config = context.config
if "connection" in config.attributes:
    run_on(config.attributes["connection"])
else:
    if config.config_file_name is not None:
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    run_from_settings()
