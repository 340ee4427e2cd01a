"""Catalog databases for the tests: a SQLite file, and a real PostgreSQL when ``VOXGATE_TEST_DATABASE_URL``
names one (``.ci/run`` starts one; locally: ``bash scripts/postgres.sh start DIR``)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest


def _admin(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _create(url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_admin(url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop(url: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_admin(url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    """An empty catalog database of each kind (PostgreSQL: a fresh database, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'catalog.sqlite'}"
        return
    server = os.environ.get("VOXGATE_TEST_DATABASE_URL")
    if not server:
        if os.environ.get("CI"):
            pytest.fail("CI must test the catalog on PostgreSQL: VOXGATE_TEST_DATABASE_URL is not set")
        pytest.skip("VOXGATE_TEST_DATABASE_URL not set (bash scripts/postgres.sh start DIR prints one)")
    name = f"voxgate_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_create(server, name))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(_drop(server, name))
