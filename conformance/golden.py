"""Golden vectors: the oracle's answers for the default case set, shipped with refact.

``data/golden.json.gz`` maps, per function and format, each point of
``cases_for(function, fmt, "default", seed=0)`` (keyed by the bit patterns of its
inputs, as :func:`refact.conformance.oracle.point_key` writes them) to the oracle's
record: status, correctly rounded values as bit patterns, exact values as exact hex.
It also stores where each threshold of :mod:`refact.conformance.cases` lies in each
format. The oracle consults it before the disk cache and mpmath, so the default
conformance run and the tests do not wait on mpmath; an entry is used only if the
file's oracle version matches.

Regenerate (reproducibly: same inputs, same bytes) after changing a definition, the
case sets or the oracle (and bump ``ORACLE_VERSION`` when answers change)::

    python -m refact.conformance.golden --write [--workers N]
    python -m refact.conformance.golden --check 200     # re-derive a sample with mpmath
"""

import argparse
import gzip
import io
import json
import random
import sys
import threading
import time
from pathlib import Path

__all__ = ["GOLDEN_FILE", "SCHEMA", "records", "thresholds", "build", "write", "check", "main"]

GOLDEN_FILE = Path(__file__).with_name("data") / "golden.json.gz"
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
    from .oracle import ORACLE_VERSION

    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        return {"records": {}, "thresholds": {}}
    if data.get("schema") != SCHEMA or data.get("oracle_version") != ORACLE_VERSION:
        return {"records": {}, "thresholds": {}}  # stale: the oracle's answers changed
    return data


def records(function, format_name):
    """Golden records of one function and format: ``{point_key: record}`` (may be empty)."""
    return _load()["records"].get(function, {}).get(format_name, {})


def thresholds(format_name):
    """Golden threshold locations in one format: ``{name: [bit pattern hex, ...]}``."""
    return _load()["thresholds"].get(format_name, {})


def build(workers=1, progress=None):
    """Compute the golden data afresh (thresholds located anew, truths from the oracle
    without golden input; the disk cache may serve repeated points)."""
    from .cases import THRESHOLDS, cases_for, threshold_values
    from .catalog import NAMES
    from .formats import FORMATS, bits_hex
    from .oracle import ORACLE_VERSION, point_key, truth_many, truth_record

    data = {"schema": SCHEMA, "oracle_version": ORACLE_VERSION, "level": LEVEL, "seed": SEED,
            "records": {}, "thresholds": {}}
    for fmt in FORMATS:
        data["thresholds"][fmt] = {
            name: [bits_hex(x, fmt) for x in threshold_values(name, fmt, use_golden=False)]
            for name in THRESHOLDS
        }
    for function in NAMES:
        data["records"][function] = {}
        for fmt in FORMATS:
            started = time.perf_counter()
            points = [p for _, p in cases_for(function, fmt, LEVEL, SEED, use_golden=False)]
            truths = truth_many(function, points, fmt, golden=False, workers=workers)
            data["records"][function][fmt] = {
                point_key(function, p, fmt): truth_record(t) for p, t in zip(points, truths)
            }
            if progress:
                undecided = sum(1 for t in truths if not t.decided)
                progress(f"{function:34} {fmt:9} {len(points):5} points "
                         f"{time.perf_counter() - started:6.1f} s  undecided {undecided}")
    return data


def write(path=GOLDEN_FILE, workers=1, progress=None):
    """Build and write the golden file byte-reproducibly (sorted keys, gzip mtime 0)."""
    global _data
    data = build(workers=workers, progress=progress)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as f:
        f.write(text.encode("utf-8"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    with _lock:
        _data = None
    return path


def check(sample=100, seed=0, progress=None):
    """Recompute ``sample`` random golden records with mpmath (no cache, no golden)
    and return the mismatches as ``[(function, format, key, golden, fresh)]``."""
    from .catalog import get_function
    from .formats import get_format
    from .oracle import truth, truth_record
    from .cases import cases_for

    rng = random.Random(f"refact/golden-check/{seed}")
    data = _load()["records"]
    entries = sorted((f, fmt, k) for f in data for fmt in data[f] for k in data[f][fmt])
    chosen = [entries[rng.getrandbits(32) % len(entries)] for _ in range(min(sample, len(entries)))]
    points = {}
    mismatches = []
    for function, fmt, key in chosen:
        if (function, fmt) not in points:
            from .oracle import point_key

            points[function, fmt] = {point_key(function, p, fmt): p
                                     for _, p in cases_for(function, fmt, LEVEL, SEED)}
        point = points[function, fmt].get(key)
        if point is None:
            mismatches.append((function, fmt, key, data[function][fmt][key], "point not in the case set"))
            continue
        fresh = truth_record(truth(get_function(function), point, get_format(fmt), cache=False, golden=False))
        stored = data[function][fmt][key]
        if fresh["s"] != stored["s"] or fresh["r"] != stored["r"]:
            mismatches.append((function, fmt, key, stored, fresh))
    return mismatches


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m refact.conformance.golden", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"regenerate {GOLDEN_FILE.name}")
    parser.add_argument("--output", default=str(GOLDEN_FILE), help="where to write (default: the shipped file)")
    parser.add_argument("--workers", type=int, default=1, help="processes deciding new points")
    parser.add_argument("--check", type=int, metavar="N", default=0,
                        help="recompute N random golden entries with mpmath and compare")
    args = parser.parse_args(argv)
    if not args.write and not args.check:
        parser.print_help()
        return 2
    if args.write:
        started = time.perf_counter()
        path = write(args.output, workers=args.workers, progress=lambda line: print(line, flush=True))
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - started:.0f} s")
    if args.check:
        bad = check(args.check)
        for item in bad:
            print("MISMATCH", *item)
        print(f"checked {args.check} golden entries: {len(bad)} mismatches")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
