"""The oracle's disk cache under damage and tampering: a row that fails its checksum, does
not decode or has a bad hex is dropped and recomputed; a table of an older layout is
recreated; a wrong row forged with a valid checksum is caught by the re-derivation
sample when the sample covers it, and then the cache is cleared. Every answer equals
a fresh computation."""

import json
import sqlite3

import pytest

from refact.conformance.numbers.formats import bits_hex, exact_hex, from_bits_hex, next_up
from refact.conformance.truth import oracle, store
from refact.conformance.truth.oracle import ORACLE_VERSION, point_key, truth_many, truth_record

FUNCTION, FMT = "softplus", "float32"
POINTS = [(x,) for x in (-3.5, -0.75, 0.125, 1.5, 2.25, 7.0, 19.5, 40.0)]
TABLE = f"truth_v{ORACLE_VERSION}"


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    directory = tmp_path / "cache"
    monkeypatch.setenv("REFACT_CACHE_DIR", str(directory))
    monkeypatch.setattr(oracle, "CACHE_AUDIT_RATE", 0.0)  # each test asks for the audit it wants
    return directory


@pytest.fixture(scope="module")
def fresh():
    """The oracle's answers computed from scratch: what every cached answer must equal."""
    return [truth_record(t) for t in truth_many(FUNCTION, POINTS, FMT, cache=False, golden=False)]


def _ask():
    truths = truth_many(FUNCTION, POINTS, FMT, golden=False)
    return [truth_record(t) for t in truths], [t.source for t in truths]


def _db_key(point):
    return f"{FUNCTION}|{FMT}|{point_key(FUNCTION, point, FMT)}"


def _sql(cache_dir, statement, *parameters):
    with sqlite3.connect(cache_dir / "oracle.sqlite3") as conn:
        return conn.execute(statement, parameters).fetchall()


def _rows(cache_dir):
    return dict(_sql(cache_dir, f"SELECT key, record FROM {TABLE}"))


def _forge(cache_dir, point, record):
    """Write ``record`` at ``point`` as an attacker who knows the checksum would."""
    key = _db_key(point)
    _sql(cache_dir, f"UPDATE {TABLE} SET record = ?, checksum = ? WHERE key = ?",
         record, store._checksum(key, record, ORACLE_VERSION), key)


def _wrong_but_well_formed(record):
    """The record with its truth moved one float up: every field still decodes."""
    up = next_up(from_bits_hex(record["r"][0], FMT), FMT)
    return json.dumps(dict(record, r=[bits_hex(up, FMT)], e=[exact_hex(up)]), separators=(",", ":"))


def test_rows_carry_their_oracle_version_and_a_checksum(cache_dir, fresh):
    assert _ask() == (fresh, ["computed"] * len(POINTS))
    rows = _sql(cache_dir, f"SELECT key, record, oracle_version, checksum FROM {TABLE}")
    assert len(rows) == len(POINTS)
    for key, record, version, checksum in rows:
        assert version == ORACLE_VERSION and checksum == store._checksum(key, record, ORACLE_VERSION)
        assert len(checksum) == 64
    assert _ask() == (fresh, ["cache"] * len(POINTS))


# --- damage the checksum catches ------------------------------------------------------------


def test_an_edited_row_fails_its_checksum_and_is_recomputed(cache_dir, fresh, capsys):
    _ask()
    key = _db_key(POINTS[3])
    wrong = _wrong_but_well_formed(fresh[3])
    _sql(cache_dir, f"UPDATE {TABLE} SET record = ? WHERE key = ?", wrong, key)  # checksum left as it was
    capsys.readouterr()
    records, sources = _ask()
    assert records == fresh
    assert sources[3] == "computed" and sources.count("cache") == len(POINTS) - 1
    err = capsys.readouterr().err
    assert err == f"refact: dropped 1 bad row(s) from the oracle cache (first {key}: checksum mismatch); " \
                  f"they are recomputed\n"
    assert json.loads(_rows(cache_dir)[key]) == fresh[3]  # the fresh answer took its place


def test_a_row_copied_under_another_key_fails_its_checksum(cache_dir, fresh, capsys):
    _ask()
    source, target = _db_key(POINTS[0]), _db_key(POINTS[1])
    (record, checksum), = _sql(cache_dir, f"SELECT record, checksum FROM {TABLE} WHERE key = ?", source)
    _sql(cache_dir, f"UPDATE {TABLE} SET record = ?, checksum = ? WHERE key = ?", record, checksum, target)
    capsys.readouterr()
    records, sources = _ask()
    assert records == fresh and sources[1] == "computed"
    assert f"(first {target}: checksum mismatch)" in capsys.readouterr().err


def test_a_row_of_another_oracle_version_is_dropped(cache_dir, fresh, capsys):
    _ask()
    key = _db_key(POINTS[2])
    _sql(cache_dir, f"UPDATE {TABLE} SET oracle_version = ? WHERE key = ?", ORACLE_VERSION + 1, key)
    capsys.readouterr()
    records, sources = _ask()
    assert records == fresh and sources[2] == "computed"
    assert f"(first {key}: written for oracle version {ORACLE_VERSION + 1})" in capsys.readouterr().err
    assert _sql(cache_dir, f"SELECT oracle_version FROM {TABLE} WHERE key = ?", key) == [(ORACLE_VERSION,)]


# --- rows that do not decode, even with a valid checksum -----------------------------------------


def _malformed(record):
    bad_rounded = dict(record, r=["0xnothex"])
    bad_exact = dict(record, e=["0x1.zzp-3"])
    return [
        "{not json",
        "",
        json.dumps([1, 2, 3]),
        json.dumps({k: v for k, v in record.items() if k != "e"}),
        json.dumps(bad_rounded),
        json.dumps(bad_exact),
        json.dumps(dict(record, e=["1.5"])),
        json.dumps(dict(record, p="64")),
        json.dumps(dict(record, s="maybe")),
        json.dumps(dict(record, r=[], e=[])),
        json.dumps(dict(record, u=[5])),
        json.dumps(dict(record, r=record["r"] * 2)),
    ]


@pytest.mark.parametrize("case", range(12))
def test_a_malformed_row_is_dropped_and_recomputed(cache_dir, fresh, capsys, case):
    _ask()
    key = _db_key(POINTS[5])
    bad = _malformed(fresh[5])[case]
    _forge(cache_dir, POINTS[5], bad)
    capsys.readouterr()
    records, sources = _ask()
    assert records == fresh and sources[5] == "computed"
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"refact: dropped 1 bad row(s) from the oracle cache (first {key}: unreadable record (")
    assert json.loads(_rows(cache_dir)[key]) == fresh[5]


def test_many_bad_rows_give_one_line(cache_dir, fresh, capsys):
    _ask()
    for point in POINTS:
        _sql(cache_dir, f"UPDATE {TABLE} SET checksum = 'x' WHERE key = ?", _db_key(point))
    capsys.readouterr()
    assert _ask() == (fresh, ["computed"] * len(POINTS))
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"refact: dropped {len(POINTS)} bad row(s)")


# --- an older cache ------------------------------------------------------------------------------


def test_a_table_of_the_old_layout_is_recreated(cache_dir, fresh, capsys):
    cache_dir.mkdir()
    # The layout before rows carried a checksum, holding a wrong answer.
    _sql(cache_dir, f"CREATE TABLE {TABLE} (key TEXT PRIMARY KEY, record TEXT NOT NULL)")
    _sql(cache_dir, f"INSERT INTO {TABLE} VALUES (?, ?)", _db_key(POINTS[0]), _wrong_but_well_formed(fresh[0]))
    assert _ask() == (fresh, ["computed"] * len(POINTS))
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"refact: oracle cache table {TABLE} in {cache_dir / 'oracle.sqlite3'} had an old "
                    f"layout; it was recreated")
    columns = [row[1] for row in _sql(cache_dir, f"PRAGMA table_info({TABLE})")]
    assert columns == ["key", "record", "oracle_version", "checksum"]
    assert _ask() == (fresh, ["cache"] * len(POINTS))
    assert capsys.readouterr().err == ""


def test_a_file_that_is_not_a_database_disables_the_cache(cache_dir, fresh, capsys):
    cache_dir.mkdir()
    (cache_dir / "oracle.sqlite3").write_bytes(b"this is not an sqlite file at all" * 100)
    assert _ask() == (fresh, ["computed"] * len(POINTS))
    assert _ask() == (fresh, ["computed"] * len(POINTS))
    (line,) = capsys.readouterr().err.splitlines()  # said once, not per call
    assert line.startswith(f"refact: oracle cache disabled ({cache_dir / 'oracle.sqlite3'}: ")


# --- a forged row with a valid checksum: the re-derivation sample ---------------------------------


def test_a_forged_row_is_used_when_no_sample_covers_it(cache_dir, fresh):
    """What the sample is for: checksums cannot catch this row."""
    _ask()
    wrong = _wrong_but_well_formed(fresh[4])
    _forge(cache_dir, POINTS[4], wrong)
    records, sources = _ask()
    assert sources[4] == "cache" and records[4]["r"] == json.loads(wrong)["r"] != fresh[4]["r"]
    assert float.fromhex(records[4]["e"][0]) == float.fromhex(json.loads(wrong)["e"][0])


def test_a_forged_row_covered_by_the_sample_clears_the_cache(cache_dir, fresh, capsys, monkeypatch):
    _ask()
    _forge(cache_dir, POINTS[4], _wrong_but_well_formed(fresh[4]))
    monkeypatch.setattr(oracle, "CACHE_AUDIT_RATE", 1.0)
    capsys.readouterr()
    records, sources = _ask()
    assert records == fresh and sources == ["computed"] * len(POINTS)  # every cached answer redone
    key = point_key(FUNCTION, POINTS[4], FMT)
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (f"refact: oracle cache {cache_dir / 'oracle.sqlite3'} cleared: it held a wrong truth "
                    f"for {FUNCTION} at {key} in {FMT}")
    # cleared, then refilled with the fresh answers
    assert {k: json.loads(v) for k, v in _rows(cache_dir).items()} == {
        _db_key(p): r for p, r in zip(POINTS, fresh)}
    assert _ask() == (fresh, ["cache"] * len(POINTS))


def _audited(monkeypatch, seed, rate):
    """The points the audit re-derives under ``seed`` and ``rate`` (a spy on the oracle)."""
    monkeypatch.setattr(oracle, "CACHE_AUDIT_SEED", seed)
    monkeypatch.setattr(oracle, "CACHE_AUDIT_RATE", rate)
    seen = []
    real = oracle._compute_encoded

    def spy(function, args, format_name, max_precision):
        seen.append(args)
        return real(function, args, format_name, max_precision)

    monkeypatch.setattr(oracle, "_compute_encoded", spy)
    _ask()
    monkeypatch.setattr(oracle, "_compute_encoded", real)
    return seen


def test_the_sample_is_reproducible_under_a_seed_and_catches_what_it_covers(cache_dir, fresh, capsys,
                                                                           monkeypatch):
    _ask()
    audited = _audited(monkeypatch, seed=3, rate=0.5)
    assert audited == _audited(monkeypatch, seed=3, rate=0.5)  # the same seed, the same sample
    assert 0 < len(audited) < len(POINTS)
    covered = POINTS.index(audited[0])
    missed = next(i for i, p in enumerate(POINTS) if p not in audited)

    _forge(cache_dir, POINTS[missed], _wrong_but_well_formed(fresh[missed]))
    records, _ = _ask()
    assert records[missed] != fresh[missed]  # outside the sample: not seen
    assert "cleared" not in capsys.readouterr().err

    _forge(cache_dir, POINTS[covered], _wrong_but_well_formed(fresh[covered]))
    records, sources = _ask()
    assert records == fresh and set(sources) == {"computed"}  # both forged rows gone
    assert "cleared: it held a wrong truth" in capsys.readouterr().err


def test_by_default_a_small_share_is_re_derived(cache_dir, monkeypatch):
    monkeypatch.setattr(oracle, "CACHE_AUDIT_RATE", 1 / 32)
    points = [(x / 8,) for x in range(-400, 400)]
    truth_many(FUNCTION, points, FMT, golden=False)
    monkeypatch.setattr(oracle, "CACHE_AUDIT_SEED", 11)
    calls = []
    real = oracle._compute_encoded
    monkeypatch.setattr(oracle, "_compute_encoded", lambda *job: calls.append(job) or real(*job))
    truths = truth_many(FUNCTION, points, FMT, golden=False)
    assert {t.source for t in truths} == {"cache"}
    assert 5 <= len(calls) <= 60  # about 800 / 32 = 25


def test_a_cached_answer_of_another_cap_is_compared_only_where_it_must_agree(cache_dir, monkeypatch, capsys):
    """Decided below both caps, a record climbs the same rungs as a fresh evaluation at
    either cap, so the audit compares it and finds it equal (no false alarm)."""
    monkeypatch.setattr(oracle, "CACHE_AUDIT_RATE", 1.0)
    first = truth_many(FUNCTION, POINTS, FMT, golden=False, max_precision=4096)
    again = truth_many(FUNCTION, POINTS, FMT, golden=False, max_precision=8192)
    assert [t.source for t in again] == ["cache"] * len(POINTS)  # audited, and agreed
    assert [t.rounded for t in again] == [t.rounded for t in first]
    assert capsys.readouterr().err == ""


def test_a_file_corrupted_under_a_running_cache_disables_it(cache_dir, fresh, capsys):
    many = [(x / 4,) for x in range(-200, 200)]  # rows enough for the table to span pages
    _ask()
    truth_many(FUNCTION, many, FMT, golden=False)
    assert _ask()[1] == ["cache"] * len(POINTS)  # the connection is open
    path = cache_dir / "oracle.sqlite3"
    _sql(cache_dir, "PRAGMA wal_checkpoint(TRUNCATE)")
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    data[page:] = b"\x5a" * (len(data) - page)  # every page but the first: garbage
    path.write_bytes(bytes(data))
    capsys.readouterr()
    assert _ask() == (fresh, ["computed"] * len(POINTS))
    assert _ask() == (fresh, ["computed"] * len(POINTS))
    (line,) = capsys.readouterr().err.splitlines()  # said once, then the cache is off
    assert line.startswith(f"refact: oracle cache disabled ({path}: ")
