"""The catalog database: an async SQLAlchemy engine, sessions, and Alembic migrations.

SQLite (one file in the data directory, through aiosqlite) by default;
PostgreSQL (asyncpg) for several replicas, with ``--database-url
postgresql+asyncpg://user:password@host/db``. :meth:`Database.migrate` brings
the schema to the newest Alembic revision at start, so an upgraded server
upgrades its database and a new one creates it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS = Path(__file__).with_name("migrations")


def sqlite_url(path: Path) -> str:
    """The URL of a SQLite database file."""
    return f"sqlite+aiosqlite:///{path}"


def alembic_config(url: str) -> AlembicConfig:
    """Alembic's configuration for this package's migrations (no ``alembic.ini`` needed)."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


class Database:
    """One catalog database.

    Args:
        url: an async SQLAlchemy URL (``sqlite+aiosqlite:///…`` or ``postgresql+asyncpg://…``).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def migrate(self) -> None:
        """Upgrade the schema to the newest revision (creates it in an empty database)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self._upgrade)

    def _upgrade(self, connection: Connection) -> None:
        cfg = alembic_config(self.url)
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")

    def session(self) -> AsyncSession:
        """A new session (use as ``async with db.session() as s``)."""
        return self.sessions()

    async def close(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    # Foreign keys (ON DELETE CASCADE) are off by default in SQLite; WAL lets readers run beside
    # the writer; a busy timeout waits for the writer instead of failing at once.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
