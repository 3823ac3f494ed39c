"""Alembic environment, driven from database.migrate (no alembic.ini).

The caller passes an open connection in ``config.attributes["connection"]`` (online), or a URL
in the ``sqlalchemy.url`` main option (online through make_engine, or offline SQL scripts).
"""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import JSON

from database.models import UTCDateTime, all_tables
from database.session import make_engine

config = context.config


def render_item(kind: str, obj: Any, autogen_context: Any) -> str | bool:
    """Autogenerate writes plain SQLAlchemy types, so revisions never import database.models."""
    if kind != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        # Alembic renders this variant as JSONB(astext_type=Text()) without importing Text
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return 'sa.JSON().with_variant(postgresql.JSONB(), "postgresql")'
    return False


OPTIONS = {
    "target_metadata": all_tables(),
    "render_as_batch": True,  # SQLite can only ALTER through table rebuilds
    "compare_type": True,
    "render_item": render_item,
}


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, **OPTIONS)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.begin() as connection:
            context.configure(connection=connection, **OPTIONS)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
