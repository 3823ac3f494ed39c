"""Persistence: models (schema of record), session (engines), migrate (Alembic), records
(frozen dataclasses in and out), repositories (typed reads and bulk writes; never commit)."""
