"""``refact golden``: rebuild or re-check the golden vectors shipped in ``data/golden.json.gz``.

Regenerate (reproducibly: same inputs, same bytes) after changing a definition, the
case sets or the oracle (and bump ``ORACLE_VERSION`` when answers change)::

    refact golden --write [--workers N]
    refact golden --check 200     # re-derive a sample with mpmath
"""

import gzip
import io
import json
import random
import time
from pathlib import Path

from refact.conformance.cases.sets import cases_for, threshold_values
from refact.conformance.cli import EXIT_UNWRITTEN, UsageError, cannot_write
from refact.conformance.cli.options import count, non_negative_integer
from refact.conformance.numbers.formats import FORMATS, bits_hex, get_format
from refact.conformance.truth import store
from refact.conformance.truth.catalog import NAMES, THRESHOLDS, get_function
from refact.conformance.truth.oracle import ORACLE_VERSION, point_key, truth, truth_many, truth_record


def build(workers=1, progress=None):
    """Compute the golden data afresh (thresholds located anew, truths from the oracle
    without golden input; the disk cache may serve repeated points)."""
    data = {"schema": store.SCHEMA, "oracle_version": ORACLE_VERSION, "level": store.LEVEL, "seed": store.SEED,
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
            points = [p for _, p in cases_for(function, fmt, store.LEVEL, store.SEED, use_golden=False)]
            truths = truth_many(function, points, fmt, golden=False, workers=workers)
            data["records"][function][fmt] = {
                point_key(function, p, fmt): truth_record(t) for p, t in zip(points, truths)
            }
            if progress:
                undecided = sum(1 for t in truths if not t.decided)
                progress(f"{function:34} {fmt:9} {len(points):5} points "
                         f"{time.perf_counter() - started:6.1f} s  undecided {undecided}")
    return data


def write(path=store.GOLDEN_FILE, workers=1, progress=None):
    """Build and write the golden file byte-reproducibly (sorted keys, gzip mtime 0)."""
    data = build(workers=workers, progress=progress)
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0, compresslevel=9) as f:
        f.write(text.encode("utf-8"))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())
    store.forget_golden()
    return path


def check(sample=100, seed=0, progress=None):
    """Recompute ``sample`` random golden records with mpmath (no cache, no golden)
    and return the mismatches as ``[(function, format, key, golden, fresh)]``."""
    rng = random.Random(f"refact/golden-check/{seed}")
    data = store.golden_data()["records"]
    entries = sorted((f, fmt, k) for f in data for fmt in data[f] for k in data[f][fmt])
    chosen = [entries[rng.getrandbits(32) % len(entries)] for _ in range(min(sample, len(entries)))]
    points = {}
    mismatches = []
    for function, fmt, key in chosen:
        if (function, fmt) not in points:
            points[function, fmt] = {point_key(function, p, fmt): p
                                     for _, p in cases_for(function, fmt, store.LEVEL, store.SEED)}
        point = points[function, fmt].get(key)
        if point is None:
            mismatches.append((function, fmt, key, data[function][fmt][key], "point not in the case set"))
            continue
        fresh = truth_record(truth(get_function(function), point, get_format(fmt), cache=False, golden=False))
        stored = data[function][fmt][key]
        if fresh["s"] != stored["s"] or fresh["r"] != stored["r"]:
            mismatches.append((function, fmt, key, stored, fresh))
    return mismatches


def add_arguments(parser):
    parser.add_argument("--write", action="store_true", help=f"regenerate {store.GOLDEN_FILE.name}")
    parser.add_argument("--output", default=str(store.GOLDEN_FILE), help="where to write (default: the shipped file)")
    parser.add_argument("--workers", type=count, default=1, help="processes deciding new points")
    parser.add_argument("--check", type=non_negative_integer, metavar="N", default=0,
                        help="recompute N random golden entries with mpmath and compare")


def run(args):
    if not args.write and not args.check:
        raise UsageError("give --write, --check N or both")
    if args.write:
        started = time.perf_counter()
        try:
            path = write(args.output, workers=args.workers, progress=lambda line: print(line, flush=True))
        except OSError as error:  # the build writes nothing but the disk cache, which never raises
            cannot_write("the golden vectors", args.output, error)
            return EXIT_UNWRITTEN
        print(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB) in {time.perf_counter() - started:.0f} s")
    if args.check:
        bad = check(args.check)
        for item in bad:
            print("MISMATCH", *item)
        print(f"checked {args.check} golden entries: {len(bad)} mismatches")
        return 1 if bad else 0
    return 0
