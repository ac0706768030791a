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
import errno
import gzip
import hashlib
import json
import os
import sqlite3
import stat
import sys
import tempfile
import threading
from pathlib import Path

__all__ = [
    "GOLDEN_FILE", "SCHEMA", "golden_records", "golden_thresholds", "golden_data", "forget_golden",
    "cache_directory", "cache_path", "cache_get", "cache_put", "cache_clear", "atomic_write_text", "atomic_write_bytes", "UnwritablePath",
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
#
# A row is trusted only as far as it proves itself: it carries the oracle version it was
# written for and a checksum of version, key and record, and the caller may pass a check
# that the record decodes. A row failing either is deleted and read as a miss (recomputed),
# so a flipped bit, a row copied under another key or a half-written record costs time,
# never a wrong verdict. A row forged with a valid checksum is the oracle's concern: it
# re-derives a random sample of the rows it uses (``oracle.CACHE_AUDIT_RATE``).

_local = threading.local()
_COLUMNS = ("key", "record", "oracle_version", "checksum")


def _table(version):
    return f"truth_v{int(version)}"


def _checksum(key, record, version):
    return hashlib.sha256(f"{int(version)}\0{key}\0{record}".encode()).hexdigest()


def cache_directory():
    """The directory of the disk caches (``REFACT_CACHE_DIR``, else ~/.cache/refact), or
    None when caching is disabled (the variable set to an empty string)."""
    directory = os.environ.get("REFACT_CACHE_DIR")
    if directory is None:
        directory = os.path.join(os.path.expanduser("~"), ".cache", "refact")
    return directory or None


def cache_path():
    """The sqlite3 file of the disk cache, or None when caching is disabled."""
    directory = cache_directory()
    return None if directory is None else os.path.join(directory, "oracle.sqlite3")


def _connection_key(version):
    return (os.getpid(), cache_path(), int(version))


def _connection(version):
    path = cache_path()
    if path is None:
        return None
    connections = getattr(_local, "connections", None)
    if connections is None:
        connections = _local.connections = {}
    key = _connection_key(version)
    if key not in connections:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            conn = sqlite3.connect(path, timeout=60)
            try:
                conn.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                pass  # some file systems refuse WAL; the default journal still works
            _prepare_table(conn, path, _table(version))
        except (OSError, sqlite3.Error) as error:
            print(f"refact: oracle cache disabled ({path}: {error})", file=sys.stderr)
            conn = None
        connections[key] = conn
    return connections[key]


def _prepare_table(conn, path, table):
    """Create the table; one of another layout (an older refact's) is dropped first: its
    rows carry no checksum, so none of them could be trusted anyway."""
    conn.execute("BEGIN IMMEDIATE")  # two processes must not both see the old layout
    try:
        columns = tuple(row[1] for row in conn.execute(f"PRAGMA table_info({table})"))
        if columns and columns != _COLUMNS:
            conn.execute(f"DROP TABLE {table}")
            print(f"refact: oracle cache table {table} in {path} had an old layout; it was recreated",
                  file=sys.stderr)
        conn.execute(f"CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, record TEXT NOT NULL, "
                     f"oracle_version INTEGER NOT NULL, checksum TEXT NOT NULL)")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def _disable(version, error):
    """Stop using a cache file that failed under us (say, a corrupted page): the run goes
    on without the cache rather than failing or warning on every call."""
    print(f"refact: oracle cache disabled ({cache_path()}: {error})", file=sys.stderr)
    _local.connections[_connection_key(version)] = None


def cache_get(keys, version, check=None):
    """``{key: record text}`` of the keys the disk cache holds for this oracle version.

    A row whose checksum or oracle version is wrong, or whose record makes ``check``
    (a callable taking the record text) raise, is deleted and left out: a miss, with one
    line on stderr per call that dropped any.
    """
    table = _table(version)
    conn = _connection(version)
    found = {}
    if conn is None or not keys:
        return found
    unique = list(dict.fromkeys(keys))
    bad = []
    try:
        for start in range(0, len(unique), 500):
            chunk = unique[start:start + 500]
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(f"SELECT key, record, oracle_version, checksum FROM {table} "
                                f"WHERE key IN ({marks})", chunk)
            for key, record, row_version, checksum in rows:
                problem = _row_problem(key, record, row_version, checksum, version, check)
                if problem:
                    bad.append((key, record, problem))
                else:
                    found[key] = record
        if bad:
            with conn:
                # Only the row as read: another process may have rewritten it meanwhile.
                conn.executemany(f"DELETE FROM {table} WHERE key = ? AND record IS ?",
                                 [(key, record) for key, record, _ in bad])
    except sqlite3.Error as error:
        _disable(version, error)
        return {}
    if bad:
        key, _, problem = bad[0]
        print(f"refact: dropped {len(bad)} bad row(s) from the oracle cache (first {key}: {problem}); "
              f"they are recomputed", file=sys.stderr)
    return found


def _row_problem(key, record, row_version, checksum, version, check):
    if row_version != int(version):
        return f"written for oracle version {row_version!r}"
    if not isinstance(record, str) or checksum != _checksum(key, record, version):
        return "checksum mismatch"
    if check is not None:
        try:
            check(record)
        except Exception as error:  # whatever a malformed record makes the decoder raise
            return f"unreadable record ({type(error).__name__}: {error})"
    return None


def cache_put(items, version):
    """Store ``(key, record text)`` pairs; a failing disk loses the cache, not the run."""
    table = _table(version)
    conn = _connection(version)
    if conn is None or not items:
        return
    rows = [(key, record, int(version), _checksum(key, record, version)) for key, record in items]
    try:
        with conn:
            conn.executemany(f"INSERT OR REPLACE INTO {table} (key, record, oracle_version, checksum) "
                             f"VALUES (?, ?, ?, ?)", rows)
    except sqlite3.Error as error:  # a full disk or a lock held too long: lose the cache, not the run
        print(f"refact: could not write the oracle cache: {error}", file=sys.stderr)


def cache_clear(version, reason):
    """Delete every row of this oracle version, saying why in one line on stderr: a row
    found wrong makes every row beside it suspect."""
    table = _table(version)
    conn = _connection(version)
    if conn is None:
        return
    try:
        with conn:
            conn.execute(f"DELETE FROM {table}")
    except sqlite3.Error as error:
        _disable(version, error)
        return
    print(f"refact: oracle cache {cache_path()} cleared: {reason}", file=sys.stderr)


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


class UnwritablePath(OSError):
    """:func:`atomic_write_text` could not, or would not, write a path. ``str()`` is one
    line naming the path and the reason; ``errno`` and ``filename`` are set as usual."""

    def __str__(self):
        return self.strerror


def _unwritable(path, error, where=""):
    return UnwritablePath(error.errno, f"cannot write {path}: {where}{error.strerror or error}", str(path))


# What atomic_write_text refuses to replace, as a message names it.
_NOT_REGULAR = (
    (stat.S_ISLNK, "a symbolic link", errno.EEXIST),
    (stat.S_ISDIR, "a directory", errno.EISDIR),
    (stat.S_ISFIFO, "a FIFO", errno.EEXIST),
    (stat.S_ISCHR, "a character device", errno.EEXIST),
    (stat.S_ISBLK, "a block device", errno.EEXIST),
    (stat.S_ISSOCK, "a socket", errno.EEXIST),
)


def _refuse_unless_regular(path):
    """The mode of the regular file at ``path`` (None when nothing is there); raises
    UnwritablePath for anything else, which a rename would replace by a regular file:
    a symlink (not its target), a FIFO another program reads, /dev/null itself."""
    try:
        status = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as error:  # say, a directory we may not search
        raise _unwritable(path, error) from error
    if stat.S_ISREG(status.st_mode):
        return stat.S_IMODE(status.st_mode)
    kind, code = next(((kind, code) for test, kind, code in _NOT_REGULAR if test(status.st_mode)),
                      ("not a regular file", errno.EEXIST))
    raise UnwritablePath(code, f"refusing to write {path}: it is {kind}, not a regular file", str(path))


def atomic_write_text(path, text):
    """:func:`atomic_write_bytes` of ``text`` in UTF-8."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path, data):
    """Replace the regular file at ``path`` with ``data`` all at once.

    The data goes to a temporary file in the same directory (``os.replace`` is atomic only
    within one filesystem), is flushed and fsynced, then renamed over ``path``: a reader, or
    whoever looks after a crash, sees the old file or the new one, never part of one.
    Missing parent directories are created.

    Raises :class:`UnwritablePath` (an OSError naming ``path``) when something other than
    a regular file sits at ``path`` (left untouched), and when the directory cannot be
    made or written or the disk is full; no temporary file is left behind either way.
    """
    data = memoryview(data)
    path = Path(path)
    directory = path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise _unwritable(path, error, f"cannot make its directory {error.filename or directory}: ") from error
    mode = _refuse_unless_regular(path)
    if mode is None:
        mode = 0o644  # mkstemp would leave 0o600
    try:
        descriptor, temporary = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _unwritable(path, error) from error
    try:
        try:
            while data:
                data = data[os.write(descriptor, data):]
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.chmod(temporary, mode)
        # Checked again just before the rename: the window for something to appear at
        # the path is now this short, not the length of the write.
        _refuse_unless_regular(path)
        os.replace(temporary, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError) and not isinstance(error, UnwritablePath):
            raise _unwritable(path, error) from error
        raise
    _fsync_directory(directory)
    return path
