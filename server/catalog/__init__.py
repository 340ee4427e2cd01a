"""The model catalog: base versions, custom models and jobs, persisted with SQLAlchemy (ARCHITECTURE "Catalog and lifecycle").

``lifecycle``   the deadline rules, pure functions of dates
``tables``      the ORM tables
``db``          engine, sessions and Alembic migrations (SQLite by default, PostgreSQL by URL)
``artifacts``   the data directory: corpora and trained models, written atomically
``store``       the operations the routes use
``resolution``  which versions a recognition request uses, pure
"""
