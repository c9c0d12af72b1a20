"""Is the store's file sound? Checked when a store opens, before anything is written to it.

``PRAGMA quick_check`` reads every page: 0.08 s on the store of a 100,000-person run, but 15 s
warm (93 s cold) on the 2 GB store of a million persons, the whole budget of a daily `linkage
add`. So a process that opened a store sound and closed it (`run`, `add`: Store.close) leaves a
seal beside it, ``<store>.sound``: the file's identity, size and modification time, and its
WAL's. A later open whose file is exactly as sealed skips the check; any other change to the
file (a write by another process, a copy, a restore, a damaged block rewritten in place)
changes what the seal names, and the whole check runs again. What a seal cannot see is damage
that leaves size and modification time alone (a disk that rots in place).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import sqlalchemy as sa

SEAL_SUFFIX = ".sound"


class StoreDamaged(RuntimeError):
    """The store's SQLite file is damaged, or is not an SQLite database at all.

    Found when the store is opened, before anything is written: a write into a damaged b-tree
    spreads the damage, and a run would complete into a store that later runs cannot read.
    """


def check_sqlite_file(engine: sa.Engine) -> None:
    """Raise StoreDamaged unless the engine's SQLite file passes ``PRAGMA quick_check``, or is
    as a linkage process that found it sound left it (its seal, see above).

    quick_check reads every page and checks the structure of every b-tree and record, but not
    that each index agrees with its table (integrity_check, twice the time): 0.08 s on the
    120 MB store of a 100,000-person run, once per process that opens an unsealed store.
    PostgreSQL and in-memory stores are not checked.
    """
    path = sqlite_file(engine)
    if path is None:
        return
    sealed = _seal(path)
    if sealed is not None and sealed == _fingerprint(path):
        return
    url = engine.url
    try:
        with engine.connect() as conn:
            found = [str(row) for row in conn.exec_driver_sql("PRAGMA quick_check(3)").scalars()]
    except sa.exc.DatabaseError as exc:
        if not _damage(exc):
            raise
        found = [str(exc.orig)]
    if found != ["ok"]:
        detail = " ".join("; ".join(found).split())  # one line, however SQLite words it
        detail = detail if len(detail) <= 200 else detail[:199] + "…"
        raise StoreDamaged(f"the store {url.database} is damaged ({detail}); nothing was "
                           "written to it: restore it from a backup, or set `store` to another "
                           "file")


def _damage(exc: sa.exc.DatabaseError) -> bool:
    """An SQLite error that means a damaged file or no database, not a busy or locked one."""
    name = getattr(exc.orig, "sqlite_errorname", "")
    return (name.startswith("SQLITE_CORRUPT") or name == "SQLITE_NOTADB"
            or any(words in str(exc.orig) for words in ("malformed", "not a database")))


def sqlite_file(engine: sa.Engine) -> Path | None:
    """The engine's SQLite file; None for PostgreSQL and in-memory stores."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database)


def seal(engine: sa.Engine) -> None:
    """Note the SQLite file as sound as it is now: call once every connection of a store that
    was checked at opening is closed (SQLite's own writes keep a sound file sound)."""
    path = sqlite_file(engine)
    if path is None or not path.is_file():
        return
    target = path.with_name(path.name + SEAL_SUFFIX)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(_fingerprint(path)), encoding="ascii")
        os.replace(tmp, target)
    except OSError:  # a read-only folder: the next open checks the whole file, as before
        tmp.unlink(missing_ok=True)


def _fingerprint(path: Path) -> dict:
    """What any change to the store's files changes: device, inode, size and modification time
    of the file and of its WAL while the WAL holds anything."""
    def stat(p: Path) -> list[int] | None:
        try:
            st = p.stat()
        except OSError:
            return None
        return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns] if st.st_size else None

    return {"db": stat(path), "wal": stat(path.with_name(path.name + "-wal"))}


def _seal(path: Path) -> dict | None:
    try:
        return json.loads(path.with_name(path.name + SEAL_SUFFIX).read_text(encoding="ascii"))
    except (OSError, ValueError):
        return None
