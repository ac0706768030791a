"""store: the golden readers (the shipped file and stand-ins for it), the sqlite3 disk
cache (round trip, versions, where it lives, what a failing disk costs) and the atomic
file writer."""

import errno
import gzip
import json
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from refact.conformance.truth import store
from refact.conformance.numbers.formats import from_bits_hex
from refact.conformance.truth.oracle import ORACLE_VERSION, point_key, truth, truth_record


# --- golden vectors ---------------------------------------------------------------------


@pytest.fixture
def golden_file(tmp_path, monkeypatch):
    """Points the store at a golden file of the test's own; the real one is read again after."""
    path = tmp_path / "golden.json.gz"
    monkeypatch.setattr(store, "GOLDEN_FILE", path)
    store.forget_golden()
    yield path
    store.forget_golden()


def _write_golden(path, **fields):
    data = {"schema": store.SCHEMA, "oracle_version": 7, "level": "default", "seed": 0,
            "records": {"sigmoid": {"float16": {'["0x3c00"]': {"s": "ok"}}}},
            "thresholds": {"float16": {"exp_overflow": ["0x498c"]}}}
    data.update(fields)
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f)
    return data


def test_golden_records_of_one_function_and_format(golden_file):
    _write_golden(golden_file)
    assert store.golden_records("sigmoid", "float16", 7) == {'["0x3c00"]': {"s": "ok"}}
    assert store.golden_records("sigmoid", "float32", 7) == {}
    assert store.golden_records("softmax", "float16", 7) == {}
    assert store.golden_thresholds("float16") == {"exp_overflow": ["0x498c"]}
    assert store.golden_thresholds("float64") == {}


def test_golden_records_of_another_oracle_version_are_ignored(golden_file):
    _write_golden(golden_file)
    assert store.golden_records("sigmoid", "float16", 8) == {}
    # thresholds do not depend on the oracle's version
    assert store.golden_thresholds("float16") == {"exp_overflow": ["0x498c"]}


def test_a_missing_golden_file_reads_as_empty(golden_file):
    assert not golden_file.exists()
    assert store.golden_data() == {"records": {}, "thresholds": {}}
    assert store.golden_records("sigmoid", "float64", ORACLE_VERSION) == {}
    assert store.golden_thresholds("float64") == {}


def test_a_golden_file_of_another_schema_reads_as_empty(golden_file):
    _write_golden(golden_file, schema="refact.golden/2")
    assert store.golden_data() == {"records": {}, "thresholds": {}}
    assert store.golden_records("sigmoid", "float16", 7) == {}


def test_the_golden_file_is_read_once_until_forgotten(golden_file):
    _write_golden(golden_file)
    assert store.golden_data()["oracle_version"] == 7
    _write_golden(golden_file, oracle_version=9)
    assert store.golden_data()["oracle_version"] == 7  # still the loaded one
    store.forget_golden()
    assert store.golden_data()["oracle_version"] == 9
    assert store.golden_records("sigmoid", "float16", 9) == {'["0x3c00"]': {"s": "ok"}}


def test_threads_share_one_read_of_the_golden_file(golden_file, monkeypatch):
    _write_golden(golden_file)
    reads = []
    real_read = store._read

    def slow_read(path):
        reads.append(path)
        time.sleep(0.05)
        return real_read(path)

    monkeypatch.setattr(store, "_read", slow_read)
    results = []
    threads = [threading.Thread(target=lambda: results.append(store.golden_data())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert reads == [golden_file]
    assert len(results) == 8 and all(r is results[0] for r in results)


def test_the_shipped_golden_file_answers_the_oracle():
    store.forget_golden()
    data = store.golden_data()
    assert data["schema"] == store.SCHEMA == "refact.golden/1"
    assert data["oracle_version"] == ORACLE_VERSION and data["level"] == "default" and data["seed"] == 0
    records = store.golden_records("sigmoid", "float64", ORACLE_VERSION)
    assert store.golden_records("sigmoid", "float64", ORACLE_VERSION + 1) == {}
    # sigmoid(0) = 1/2: keyed by the point's bit pattern, the value as a bit pattern
    record = records[point_key("sigmoid", (0.0,), "float64")]
    assert record["s"] == "ok" and record["r"] == ["0x3fe0000000000000"] and record["e"] == ["0x1p-1"]
    # a golden record is the oracle's own answer, as a fresh evaluation gives it
    for key in sorted(records)[::40]:
        x = from_bits_hex(json.loads(key)[0], "float64")
        assert records[key] == truth_record(truth("sigmoid", (x,), "float64", golden=False, cache=False))
    assert set(store.golden_thresholds("float16")) >= {"exp_overflow", "exp_neg_overflow"}
    assert store.golden_thresholds("float16")["exp_overflow"] == ["0x498c"]


def test_the_oracle_reads_golden_answers_first(monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", "")
    store.forget_golden()
    t = truth("sigmoid", (0.0,), "float64")
    assert t.source == "golden" and t.rounded == 0.5


# --- the disk cache -------------------------------------------------------------------------


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("REFACT_CACHE_DIR", str(directory))
    return directory


def test_cache_path_follows_its_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert store.cache_path() == os.path.join(str(tmp_path / "elsewhere"), "oracle.sqlite3")
    monkeypatch.setenv("REFACT_CACHE_DIR", "")
    assert store.cache_path() is None  # an empty value disables the cache
    monkeypatch.delenv("REFACT_CACHE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert store.cache_path() == os.path.join(str(tmp_path / "home"), ".cache", "refact", "oracle.sqlite3")


def test_put_then_get_round_trips(cache_dir):
    items = [("sigmoid|float64|[\"0x0\"]", '{"s":"ok"}'), ("k2", "two"), ("k3", "three")]
    store.cache_put(items, 1)
    assert (cache_dir / "oracle.sqlite3").is_file()
    assert store.cache_get(["k2", "missing", "sigmoid|float64|[\"0x0\"]", "k2"], 1) == {
        "k2": "two", "sigmoid|float64|[\"0x0\"]": '{"s":"ok"}'}
    assert store.cache_get([], 1) == {}


def test_a_later_put_replaces_the_record(cache_dir):
    store.cache_put([("k", "old")], 1)
    store.cache_put([("k", "new")], 1)
    assert store.cache_get(["k"], 1) == {"k": "new"}


def test_another_oracle_version_does_not_see_the_records(cache_dir):
    store.cache_put([("k", "v1")], 1)
    assert store.cache_get(["k"], 2) == {}
    store.cache_put([("k", "v2")], 2)
    assert store.cache_get(["k"], 1) == {"k": "v1"} and store.cache_get(["k"], 2) == {"k": "v2"}
    with sqlite3.connect(cache_dir / "oracle.sqlite3") as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"truth_v1", "truth_v2"}


def test_a_version_is_a_number_not_sql(cache_dir):
    with pytest.raises(ValueError):
        store.cache_get(["k"], "1; DROP TABLE truth_v1")


def test_many_keys_are_asked_in_chunks(cache_dir):
    items = [(f"key{i}", f"record{i}") for i in range(1234)]
    store.cache_put(items, 1)
    found = store.cache_get([k for k, _ in items] * 2 + ["absent"], 1)
    assert found == dict(items)


def test_the_cache_is_shared_between_threads_and_processes(cache_dir):
    store.cache_put([("shared", "yes")], 1)
    seen = []
    thread = threading.Thread(target=lambda: seen.append(store.cache_get(["shared"], 1)))
    thread.start()
    thread.join()
    assert seen == [{"shared": "yes"}]
    code = ("from refact.conformance.truth import store; "
            "print(store.cache_get(['shared'], 1)); store.cache_put([('child', 'wrote')], 1)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=dict(os.environ, REFACT_CACHE_DIR=str(cache_dir)))
    assert out.stdout.strip() == "{'shared': 'yes'}"
    assert store.cache_get(["child"], 1) == {"child": "wrote"}


def test_a_disabled_cache_stores_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("REFACT_CACHE_DIR", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    store.cache_put([("k", "v")], 1)
    assert store.cache_get(["k"], 1) == {}
    assert not (tmp_path / "home").exists()


def test_an_unusable_cache_directory_disables_the_cache(tmp_path, monkeypatch, capsys):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the cache directory should be")
    monkeypatch.setenv("REFACT_CACHE_DIR", str(blocker / "cache"))
    store.cache_put([("k", "v")], 1)
    assert store.cache_get(["k"], 1) == {}
    err = capsys.readouterr().err
    assert err.count("refact: oracle cache disabled (") == 1  # said once, not per call
    assert blocker.read_text() == "a file where the cache directory should be"


def test_a_failing_write_loses_the_batch_not_the_run(cache_dir, capsys):
    store.cache_put([("kept", "before")], 1)
    store.cache_put([("good", "fine"), ("bad", None)], 1)  # NOT NULL: the transaction fails
    assert "refact: could not write the oracle cache" in capsys.readouterr().err
    assert store.cache_get(["kept", "good", "bad"], 1) == {"kept": "before"}  # all or nothing
    store.cache_put([("after", "still works")], 1)
    assert store.cache_get(["after"], 1) == {"after": "still works"}


def test_the_oracle_writes_its_answers_to_the_cache(cache_dir):
    t = truth("softplus", (3.25,), "float32", golden=False)
    assert t.source == "computed"
    again = truth("softplus", (3.25,), "float32", golden=False)
    assert again.source == "cache" and again.rounded == t.rounded
    key = f"softplus|float32|{point_key('softplus', (3.25,), 'float32')}"
    (text,) = store.cache_get([key], ORACLE_VERSION).values()
    assert json.loads(text)["s"] == "ok"


# --- atomic_write_text ---------------------------------------------------------------------


def _leftovers(directory, name):
    return sorted(p.name for p in directory.iterdir() if p.name != name)


def test_atomic_write_creates_the_file_and_its_directories(tmp_path):
    path = tmp_path / "a" / "b" / "report.json"
    returned = store.atomic_write_text(str(path), "héllo\nwörld\n")
    assert returned == path
    assert path.read_bytes() == "héllo\nwörld\n".encode("utf-8")
    assert _leftovers(path.parent, "report.json") == []


def test_atomic_write_replaces_the_file_as_a_whole(tmp_path):
    path = tmp_path / "report.md"
    path.write_text("old contents")
    old_inode = path.stat().st_ino
    with open(path, encoding="utf-8") as reader:  # a reader that opened the old file
        store.atomic_write_text(path, "new contents")
        assert reader.read() == "old contents"  # replaced by a rename, not rewritten in place
    assert path.read_text() == "new contents" and path.stat().st_ino != old_inode
    assert _leftovers(tmp_path, "report.md") == []


def test_the_rename_happens_once_the_new_text_is_complete(tmp_path, monkeypatch):
    path = tmp_path / "report.json"
    path.write_text("old")
    seen = []
    real_replace = os.replace

    def replace(source, target):
        # at the moment of the rename: the old file intact, the temporary one complete, beside it
        seen.append((os.path.dirname(source), os.path.basename(source), open(source).read(),
                     open(target).read()))
        return real_replace(source, target)

    monkeypatch.setattr(store.os, "replace", replace)
    store.atomic_write_text(path, "x" * 100000)
    ((directory, name, new, old),) = seen
    assert directory == str(tmp_path) and name.startswith(".report.json.") and name.endswith(".tmp")
    assert new == "x" * 100000 and old == "old"


@pytest.mark.parametrize("failing", ["fsync", "replace"])
def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, failing):
    path = tmp_path / "report.json"
    path.write_text("previous")

    def broken(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, failing, broken)
    with pytest.raises(OSError, match="No space left"):
        store.atomic_write_text(path, "new")
    assert path.read_text() == "previous"
    assert _leftovers(tmp_path, "report.json") == []


def test_atomic_write_keeps_an_existing_files_mode(tmp_path):
    path = tmp_path / "kept.txt"
    path.write_text("x")
    os.chmod(path, 0o640)
    store.atomic_write_text(path, "y")
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


def test_a_new_file_gets_ordinary_permissions_not_mkstemps(tmp_path):
    old = os.umask(0o022)
    try:
        path = store.atomic_write_text(tmp_path / "new.txt", "y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=300))
def test_atomic_write_round_trips_any_text(text):
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "out.txt")
        store.atomic_write_text(path, "something else first")
        store.atomic_write_text(path, text)
        with open(path, "rb") as f:
            assert f.read().decode("utf-8") == text  # no newline translation either
        assert os.listdir(directory) == ["out.txt"]


# --- atomic_write_text refuses what is not a regular file ------------------------------------


def _refused(path, kind):
    with pytest.raises(store.UnwritablePath) as caught:
        store.atomic_write_text(path, "must not land anywhere")
    error = caught.value
    assert isinstance(error, OSError) and error.filename == str(path)
    assert str(error) == f"refusing to write {path}: it is {kind}, not a regular file"
    return error


def test_a_symlink_is_not_replaced_nor_written_through(tmp_path):
    target = tmp_path / "target.txt"
    target.write_text("the target")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    _refused(link, "a symbolic link")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "the target"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "target.txt"]


def test_a_dangling_symlink_is_not_replaced(tmp_path):
    link = tmp_path / "link.json"
    link.symlink_to(tmp_path / "nowhere")
    _refused(link, "a symbolic link")
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()


def test_a_fifo_is_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    _refused(fifo, "a FIFO")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(tmp_path) == ["pipe"]


def test_a_directory_is_not_replaced(tmp_path):
    directory = tmp_path / "report.json"
    directory.mkdir()
    (directory / "inside").write_text("kept")
    error = _refused(directory, "a directory")
    assert error.errno == errno.EISDIR
    assert (directory / "inside").read_text() == "kept" and os.listdir(tmp_path) == ["report.json"]


def test_a_socket_is_not_replaced(tmp_path):
    import socket

    path = tmp_path / "s"  # short: a socket path has a length limit
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        _refused(path, "a socket")
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_a_character_device_is_not_replaced(tmp_path):
    # The same kind of node as /dev/null, made here so that a regression replaces a copy.
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("cannot make a device node here")
    _refused(null, "a character device")
    assert stat.S_ISCHR(os.lstat(null).st_mode) and os.listdir(tmp_path) == ["null"]


def test_a_symlink_to_dev_null_is_refused_before_anything_is_opened(tmp_path):
    link = tmp_path / "out.json"
    link.symlink_to(os.devnull)
    _refused(link, "a symbolic link")
    assert os.readlink(link) == os.devnull and os.listdir(tmp_path) == ["out.json"]


def test_a_parent_that_is_a_file_is_named(tmp_path):
    blocker = tmp_path / "reports"
    blocker.write_text("a file, not a directory")
    path = blocker / "r.json"
    with pytest.raises(store.UnwritablePath) as caught:
        store.atomic_write_text(path, "x")
    message = str(caught.value)
    assert message.startswith(f"cannot write {path}: cannot make its directory {blocker}: ")
    assert "\n" not in message and caught.value.filename == str(path)
    assert blocker.read_text() == "a file, not a directory" and os.listdir(tmp_path) == ["reports"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_directory_is_named(tmp_path):
    directory = tmp_path / "locked"
    directory.mkdir()
    (directory / "r.json").write_text("old")
    os.chmod(directory, 0o555)
    try:
        with pytest.raises(store.UnwritablePath, match=f"cannot write {directory / 'r.json'}: Permission denied"):
            store.atomic_write_text(directory / "r.json", "new")
    finally:
        os.chmod(directory, 0o755)
    assert os.listdir(directory) == ["r.json"] and (directory / "r.json").read_text() == "old"


def test_a_refused_temporary_file_is_named(tmp_path, monkeypatch):
    # What a read-only directory does, also when the tests run as root.
    def refused(**kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(store.tempfile, "mkstemp", refused)
    path = tmp_path / "r.json"
    with pytest.raises(store.UnwritablePath) as caught:
        store.atomic_write_text(path, "new")
    assert str(caught.value) == f"cannot write {path}: Permission denied"
    assert caught.value.errno == errno.EACCES and os.listdir(tmp_path) == []


@pytest.mark.parametrize("written_first", [0, 5])
def test_a_full_disk_while_writing_is_named_and_leaves_nothing(tmp_path, monkeypatch, written_first):
    path = tmp_path / "report.json"
    path.write_text("previous")
    real_write = os.write
    calls = []

    def write(descriptor, data):
        calls.append(len(data))
        if len(calls) == 1 and written_first:
            return real_write(descriptor, bytes(data[:written_first]))  # a short write, then the disk fills
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "write", write)
    with pytest.raises(store.UnwritablePath) as caught:
        store.atomic_write_text(path, "new contents, longer than five bytes")
    assert str(caught.value) == f"cannot write {path}: No space left on device"
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(path)
    assert calls[:2] == ([36, 31] if written_first else [36])
    assert path.read_text() == "previous" and os.listdir(tmp_path) == ["report.json"]


def test_short_writes_are_completed(tmp_path, monkeypatch):
    real_write = os.write
    monkeypatch.setattr(store.os, "write", lambda descriptor, data: real_write(descriptor, bytes(data[:3])))
    path = store.atomic_write_text(tmp_path / "r.txt", "written three bytes at a time ✓")
    assert path.read_text(encoding="utf-8") == "written three bytes at a time ✓"
