"""Golden vectors: the oracle's answers for the default case set, shipped with refact.

``data/golden.json.gz`` maps, per function and format, each point of
``cases_for(function, fmt, "default", seed=0)`` (keyed by the bit patterns of its
inputs, as :func:`refact.conformance.truth.oracle.point_key` writes them) to the oracle's
record: status, correctly rounded values as bit patterns, exact values as exact hex.
It also stores where each threshold of :mod:`refact.conformance.cases.sets` lies in each
format. The oracle consults it before the disk cache and mpmath, so the default
conformance run and the tests do not wait on mpmath; an entry is used only if the
file's oracle version matches.

It is rebuilt by ``refact golden --write`` (:mod:`refact.conformance.cli.golden`).
The same module keeps the disk cache of every other answer: one sqlite3 file, a
table per oracle version.
"""

import contextlib
import gzip
import json
import os
import sqlite3
import sys
import tempfile
import threading
from pathlib import Path

__all__ = [
    "GOLDEN_FILE", "SCHEMA", "golden_records", "golden_thresholds", "golden_data", "forget_golden",
    "cache_path", "cache_get", "cache_put", "atomic_write_text",
]

GOLDEN_FILE = Path(__file__).parent.parent / "data" / "golden.json.gz"
SCHEMA = "refact.golden/1"
LEVEL = "default"
SEED = 0

_lock = threading.Lock()
_data = None


def _load():
    global _data
    if _data is None:
        with _lock:
            if _data is None:
                _data = _read(GOLDEN_FILE)
    return _data


def _read(path):
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {"records": {}, "thresholds": {}}
    if data.get("schema") != SCHEMA:
        return {"records": {}, "thresholds": {}}
    return data


def golden_records(function, format_name, oracle_version):
    """Golden records of one function and format: ``{point_key: record}``; empty when
    the file was written by another version of the oracle (its answers changed)."""
    data = _load()
    if data.get("oracle_version") != oracle_version:
        return {}
    return data["records"].get(function, {}).get(format_name, {})


def golden_thresholds(format_name):
    """Golden threshold locations in one format: ``{name: [bit pattern hex, ...]}``."""
    return _load()["thresholds"].get(format_name, {})


def golden_data():
    """The whole golden file as loaded (``{}`` sections when it is absent)."""
    return _load()


def forget_golden():
    """Drop the loaded golden file, so the next lookup reads it again (after a rewrite)."""
    global _data
    with _lock:
        _data = None


# --- the disk cache: one sqlite3 file, a table per oracle version -----------------------

_local = threading.local()


def _table(version):
    return f"truth_v{int(version)}"




def cache_path():
    """The sqlite3 file of the disk cache, or None when caching is disabled."""
    directory = os.environ.get("REFACT_CACHE_DIR")
    if directory is None:
        directory = os.path.join(os.path.expanduser("~"), ".cache", "refact")
    if not directory:
        return None
    return os.path.join(directory, "oracle.sqlite3")


def _connection(version):
    path = cache_path()
    if path is None:
        return None
    connections = getattr(_local, "connections", None)
    if connections is None:
        connections = _local.connections = {}
    key = (os.getpid(), path, version)
    if key not in connections:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            conn = sqlite3.connect(path, timeout=60)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                pass  # some file systems refuse WAL; the default journal still works
            conn.execute(f"CREATE TABLE IF NOT EXISTS {_table(version)} (key TEXT PRIMARY KEY, record TEXT NOT NULL)")
            conn.commit()
        except (OSError, sqlite3.Error) as error:
            print(f"refact: oracle cache disabled ({path}: {error})", file=sys.stderr)
            conn = None
        connections[key] = conn
    return connections[key]


def cache_get(keys, version):
    """``{key: record text}`` of the keys the disk cache holds for this oracle version."""
    conn = _connection(version)
    found = {}
    if conn is None or not keys:
        return found
    unique = list(dict.fromkeys(keys))
    for start in range(0, len(unique), 500):
        chunk = unique[start:start + 500]
        marks = ",".join("?" * len(chunk))
        rows = conn.execute(f"SELECT key, record FROM {_table(version)} WHERE key IN ({marks})", chunk)
        found.update(rows)
    return found


def cache_put(items, version):
    """Store ``(key, record text)`` pairs; a failing disk loses the cache, not the run."""
    conn = _connection(version)
    if conn is None or not items:
        return
    try:
        with conn:
            conn.executemany(f"INSERT OR REPLACE INTO {_table(version)} (key, record) VALUES (?, ?)", items)
    except sqlite3.Error as error:  # a full disk or a lock held too long: lose the cache, not the run
        print(f"refact: could not write the oracle cache: {error}", file=sys.stderr)


# --- files written whole: reports, sweep checkpoints ------------------------------------


def _fsync_directory(directory):
    # Makes the rename itself durable on POSIX; Windows cannot open a directory, and some
    # filesystems refuse, neither of which makes the file less whole.
    if os.name == "nt":
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def atomic_write_text(path, text):
    """Replace the file at ``path`` with ``text`` (UTF-8) all at once.

    The text goes to a temporary file in the same directory (``os.replace`` is atomic only
    within one filesystem), is flushed and fsynced, then renamed over ``path``: a reader, or
    whoever looks after a crash, sees the old file or the new one, never part of one.
    """
    path = Path(path)
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644  # mkstemp would leave 0o600
    descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _fsync_directory(directory)
    return path
