"""Sweep checkpoints verify themselves: a shard file that was edited, copied from another
sweep, torn, replaced by garbage or by something that is not a file is named on stderr
and its shard recomputed, and the resumed record is the uninterrupted one."""

import json
import os
import shutil

import pytest

from refact.conformance.run import sweep

LO, HI, SHARD = 0x3800, 0x3BFF, 256  # float16 [0.5, 1): four shards, well under a second
SHARDS = 4
# Timing and provenance fields: the only ones allowed to differ between equal sweeps.
VOLATILE = ("seconds", "wall_seconds", "executor", "resumed_shards")


def _sweep(checkpoint=None, function="sigmoid"):
    return sweep.sweep_record(function, "numpy", "float16", LO, HI, shard_size=SHARD,
                              checkpoint=checkpoint, oracle_cache=False)


def _comparable(record):
    record = json.loads(json.dumps(record))
    for key in VOLATILE:
        record["sweep"].pop(key, None)
    return record


@pytest.fixture(scope="module")
def uninterrupted():
    return _comparable(_sweep())


@pytest.fixture
def finished(tmp_path, capsys):
    """A checkpoint root holding every shard of the sigmoid sweep, and its directory."""
    root = tmp_path / "checkpoints"
    _sweep(root)
    (directory,) = root.glob("sigmoid-*")
    assert sorted(p.name for p in directory.glob("shard-*.json")) == [f"shard-{i:08d}.json" for i in range(SHARDS)]
    capsys.readouterr()
    return root, directory


def _shard(directory, index):
    return directory / f"shard-{index:08d}.json"


def _resume_and_check(root, uninterrupted, capsys, bad, problem):
    """Resume; every file in ``bad`` is named once on stderr with ``problem``, its shard
    recomputed and saved again, and the record is the uninterrupted sweep's."""
    resumed = _sweep(root)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == len(bad), err
    for path in bad:
        (line,) = [line for line in lines if str(path) in line]
        assert line.startswith("refact: ignoring checkpoint ") and problem in line
        assert line.endswith("the shard is recomputed")
    assert resumed["sweep"]["resumed_shards"] == SHARDS - len(bad)
    assert _comparable(resumed) == uninterrupted
    again = _sweep(root)  # the recomputed shards were saved, and are trusted now
    assert capsys.readouterr().err == ""
    assert again["sweep"]["resumed_shards"] == SHARDS and _comparable(again) == uninterrupted


def test_an_untouched_checkpoint_resumes_every_shard(finished, uninterrupted, capsys):
    root, directory = finished
    _resume_and_check(root, uninterrupted, capsys, [], "")
    entry = json.loads(_shard(directory, 0).read_text())
    assert set(entry) == {"kind", "key", "digest", "summary"} and entry["kind"] == sweep.CHECKPOINT_KIND
    assert entry["summary"]["index"] == 0 and entry["summary"]["start"] == LO


def test_an_edited_number_is_caught_by_the_digest(finished, uninterrupted, capsys):
    root, directory = finished
    path = _shard(directory, 1)
    entry = json.loads(path.read_text())
    assert entry["summary"]["failing"] == 0 and uninterrupted["status"] == "pass"
    entry["summary"]["failing"] = 7  # trusted, this would turn the pass into a fail
    entry["summary"]["max_ulp"] = 3.5
    path.write_text(json.dumps(entry) + "\n")
    _resume_and_check(root, uninterrupted, capsys, [path], "does not match its digest")


def test_a_one_character_edit_is_caught(finished, uninterrupted, capsys):
    root, directory = finished
    path = _shard(directory, 2)
    text = path.read_text()
    assert '"points": 256' in text
    path.write_text(text.replace('"points": 256', '"points": 257', 1))
    _resume_and_check(root, uninterrupted, capsys, [path], "does not match its digest")


def test_shards_copied_from_another_functions_sweep_are_refused(finished, uninterrupted, capsys):
    root, directory = finished
    _sweep(root, function="log_sigmoid")
    (other,) = root.glob("log_sigmoid-*")
    capsys.readouterr()
    for index in (0, 3):
        shutil.copyfile(_shard(other, index), _shard(directory, index))
    assert _shard(directory, 0).read_bytes() == _shard(other, 0).read_bytes()
    _resume_and_check(root, uninterrupted, capsys, [_shard(directory, 0), _shard(directory, 3)],
                      "written by another sweep")


def test_a_shard_under_another_shards_name_is_refused(finished, uninterrupted, capsys):
    root, directory = finished
    shutil.copyfile(_shard(directory, 0), _shard(directory, 2))  # valid digest, wrong place
    _resume_and_check(root, uninterrupted, capsys, [_shard(directory, 2)], "holds another shard than shard 2")


def test_a_truncated_shard_is_recomputed(finished, uninterrupted, capsys):
    root, directory = finished
    path = _shard(directory, 3)
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    _resume_and_check(root, uninterrupted, capsys, [path], "unreadable (JSONDecodeError")


@pytest.mark.parametrize("garbage, problem", [
    (b"\xff\xfe\x00garbage\x81", "unreadable (UnicodeDecodeError"),
    (b"", "unreadable (JSONDecodeError"),
    (b"null\n", "not a sweep checkpoint"),
    (b"[1, 2, 3]\n", "not a sweep checkpoint"),
    (b'{"kind": "refact.sweep/2", "summary": 5}\n', "not a sweep checkpoint"),
    (b'{"kind": "refact.sweep/2", "summary": {}}\n', "written by another sweep"),
])
def test_garbage_in_a_shard_file_is_recomputed(finished, uninterrupted, capsys, garbage, problem):
    root, directory = finished
    path = _shard(directory, 1)
    path.write_bytes(garbage)
    _resume_and_check(root, uninterrupted, capsys, [path], problem)


def test_a_shard_of_the_old_unsigned_format_is_recomputed(finished, uninterrupted, capsys):
    root, directory = finished
    path = _shard(directory, 0)
    path.write_text(json.dumps(json.loads(path.read_text())["summary"]) + "\n")  # a bare summary, as before
    _resume_and_check(root, uninterrupted, capsys, [path], "not a sweep checkpoint")


def test_every_kind_of_damage_at_once(finished, uninterrupted, capsys):
    root, directory = finished
    _sweep(root, function="softplus")
    (other,) = root.glob("softplus-*")
    capsys.readouterr()
    entry = json.loads(_shard(directory, 0).read_text())
    entry["summary"]["ulp_sum"] += 1.0
    _shard(directory, 0).write_text(json.dumps(entry))
    shutil.copyfile(_shard(other, 1), _shard(directory, 1))
    _shard(directory, 2).write_bytes(_shard(directory, 2).read_bytes()[:40])
    _shard(directory, 3).write_bytes(os.urandom(300))
    _resume_and_check(root, uninterrupted, capsys, [_shard(directory, i) for i in range(SHARDS)], "")


def test_a_fifo_at_a_shard_path_is_not_read_and_not_replaced(finished, uninterrupted, capsys):
    root, directory = finished
    path = _shard(directory, 2)
    path.unlink()
    os.mkfifo(path)  # reading it would block the sweep for ever
    resumed = _sweep(root)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"refact: ignoring checkpoint {path}: not a regular file; the shard is recomputed"
    # The recomputed shard cannot be saved there: said once, and the sweep goes on.
    assert len(lines) == 2 and f"refusing to write {path}: it is a FIFO" in lines[1]
    assert "the sweep goes on" in lines[1]
    assert _comparable(resumed) == uninterrupted and resumed["sweep"]["resumed_shards"] == SHARDS - 1
    assert path.is_fifo()


def test_a_directory_at_a_shard_path_costs_the_checkpoint_not_the_sweep(finished, uninterrupted, capsys):
    root, directory = finished
    path = _shard(directory, 0)
    path.unlink()
    path.mkdir()
    (path / "inside").write_text("kept")
    resumed = _sweep(root)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"refact: ignoring checkpoint {path}: not a regular file; the shard is recomputed"
    assert len(lines) == 2 and f"refusing to write {path}: it is a directory" in lines[1]
    assert _comparable(resumed) == uninterrupted
    assert (path / "inside").read_text() == "kept"


def test_a_symlink_to_a_valid_shard_of_this_sweep_is_trusted_by_its_content(finished, uninterrupted, capsys,
                                                                           tmp_path):
    root, directory = finished
    path = _shard(directory, 1)
    elsewhere = tmp_path / "moved.json"
    shutil.move(path, elsewhere)
    path.symlink_to(elsewhere)
    _resume_and_check(root, uninterrupted, capsys, [], "")
    assert path.is_symlink()


def test_a_full_disk_loses_checkpoints_not_the_sweep(tmp_path, uninterrupted, capsys, monkeypatch):
    from refact.conformance.truth import store

    def full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "fsync", full)
    record = _sweep(tmp_path / "checkpoints")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "No space left on device" in lines[0] and "the sweep goes on" in lines[0]
    assert _comparable(record) == uninterrupted
    (directory,) = (tmp_path / "checkpoints").glob("sigmoid-*")
    assert list(directory.iterdir()) == []  # nothing half-written, no temporary files
    monkeypatch.undo()
    resumed = _sweep(tmp_path / "checkpoints")
    assert resumed["sweep"]["resumed_shards"] == 0 and _comparable(resumed) == uninterrupted


def test_a_key_file_of_another_sweep_is_rewritten(finished, uninterrupted, capsys):
    root, directory = finished
    key_file = directory / "key.json"
    key = json.loads(key_file.read_text())
    key_file.write_text(json.dumps(dict(key, function="softplus")))
    resumed = _sweep(root)
    assert capsys.readouterr().err == f"refact: {key_file} does not describe this sweep; rewritten\n"
    assert json.loads(key_file.read_text()) == key
    assert resumed["sweep"]["resumed_shards"] == SHARDS and _comparable(resumed) == uninterrupted
