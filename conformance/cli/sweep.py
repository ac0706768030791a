"""``refact sweep``: an exhaustive or ranged sweep of one function over a format."""

import argparse
import os

from refact.conformance.cli import EXIT_UNWRITTEN, UsageError, cannot_write
from refact.conformance.cli.options import bit_range, count, non_negative_integer
from refact.conformance.numbers.formats import get_format
from refact.conformance.run.sweep import (
    DEFAULT_SAMPLE, SWEEP_FORMATS, dask_executor, run_sweep, sweep_report, validated_range,
)
from refact.conformance.truth.catalog import FAST_TRUTHS, get_function


# --- the command -------------------------------------------------------------------------------

EXIT_STATUS = f"""\
exit status:
  0    pass, convention or skip
  1    fail or error
  2    usage error: a bad option value, an unknown name, a range outside the format
  {EXIT_UNWRITTEN}    the --json report could not be written
  130  interrupted (Ctrl-C)
"""


def add_arguments(parser):
    parser.epilog = EXIT_STATUS
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--function", required=True, help="an elementwise catalog function: "
                        + ", ".join(FAST_TRUTHS))
    parser.add_argument("--backend", required=True, help="a backend name (refact backends lists them)")
    parser.add_argument("--format", required=True, help="float32, float16 or bfloat16")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--range", metavar="LO:HI", type=bit_range,
                       help="bit patterns LO to HI inclusive, hex or decimal "
                            "(0x3f800000:0x3fffffff is [1, 2) in float32)")
    which.add_argument("--exhaustive", action="store_true", help="every bit pattern of the format, NaNs included")
    parser.add_argument("--workers", type=count, default=None,
                        help="local worker processes (default: all cores; 1 runs in this process)")
    parser.add_argument("--dask", metavar="ADDRESS",
                        help="run the shards on a Dask cluster: a scheduler address (tcp://host:8786) "
                             "or 'local' for a LocalCluster of --workers processes")
    parser.add_argument("--checkpoint", metavar="DIR", help="save finished shards here; a rerun resumes")
    parser.add_argument("--json", metavar="OUT", help="write the refact.report/1 JSON report here")
    parser.add_argument("--shard-size", type=count, default=None,
                        help="bit patterns per shard (default 2**20 for float32, 2**14 for 16-bit)")
    parser.add_argument("--seed", type=non_negative_integer, default=0, help="seed of the per-shard oracle samples")
    parser.add_argument("--sample", type=non_negative_integer, default=DEFAULT_SAMPLE,
                        help=f"points per shard checked by mpmath besides the undecided ones "
                             f"(default {DEFAULT_SAMPLE})")
    parser.add_argument("--device", default="cpu", help="backend device (default cpu)")
    parser.add_argument("--quiet", action="store_true",
                        help="no progress on stderr (by default a bar on a terminal, "
                             "a line a minute otherwise)")


def run(args):
    try:
        fmt = get_format(args.format)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if fmt.name not in SWEEP_FORMATS:
        raise UsageError(f"cannot sweep {fmt.name}: choose one of {', '.join(SWEEP_FORMATS)}")
    try:
        spec = get_function(args.function)
    except (KeyError, ValueError) as error:
        raise UsageError(str(error)) from None
    if spec.name not in FAST_TRUTHS:
        raise UsageError(f"{spec.name} cannot be swept: sweeps cover {', '.join(FAST_TRUTHS)}")
    from refact.backends import target_of

    try:
        target_of(args.backend)  # from metadata: the plugin loads where shards run
    except ValueError as error:
        raise UsageError(str(error)) from None
    if args.exhaustive:
        lo, hi = None, None
    elif args.range:
        lo, hi = args.range
    else:
        raise UsageError("give --range LO:HI or --exhaustive")
    try:
        lo, hi = validated_range(fmt, lo, hi)
    except ValueError as error:
        raise UsageError(str(error)) from None
    workers = args.workers or os.cpu_count() or 1
    try:
        executor = dask_executor(args.dask, args.workers) if args.dask else None
    except RuntimeError as error:  # dask missing or its scheduler unreachable
        raise UsageError(str(error)) from None
    try:
        record, info = run_sweep(spec.name, args.backend, fmt, lo, hi, device=args.device, workers=workers,
                                 executor=executor, checkpoint=args.checkpoint, shard_size=args.shard_size,
                                 seed=args.seed, sample=args.sample, progress=not args.quiet)
    finally:
        if executor is not None:
            executor.close()
    if args.json:
        from refact.conformance.report.writers import validate, write_json

        report = sweep_report([record], [info], seed=args.seed)
        try:
            validate(report)
        except ImportError:
            pass  # jsonschema is optional for writing
        try:
            write_json(report, args.json)
        except (OSError, ValueError) as error:
            cannot_write("JSON report", args.json, error)
            _print_record(record)
            return EXIT_UNWRITTEN
    _print_record(record)
    return 0 if record["status"] in ("pass", "convention", "skip") else 1


def _print_record(record):
    sweep = record.get("sweep", {})
    print(f"{record['function']} on {record['backend']} in {record['format']}: {record['status']}")
    print(f"  {record['message']}")
    if record["status"] == "skip":
        return
    if record["correctly_rounded"] is not None:
        print(f"  correctly rounded {record['correctly_rounded']:.6f}, within 1 ULP {record['within_1ulp']:.6f}, "
              f"mean {record['mean_ulp'] or 0:.3g} ULP, p99 <= {record['p99_ulp'] or 0:.3g} ULP, "
              f"budget {record['budget_ulp']} ULP")
    failing = {name: n for name, n in record["classes"].items() if n}
    print(f"  classes: {failing or 'none'}")
    for worst in record["worst"][:3]:
        print(f"  worst: x = {worst['input'][0]!r} ({worst['input_bits'][0]}) -> {worst['output']!r}, "
              f"truth {worst['expected']!r}, {_error_of(worst)}")
    print(f"  {sweep.get('shards')} shards ({sweep.get('resumed_shards')} from the checkpoint), "
          f"{sweep.get('oracle_points'):,} points decided by mpmath, "
          f"{sweep.get('wall_seconds', 0):.1f} s on {sweep.get('executor')}")


def _error_of(worst):
    """A worst point's error: its ULP distance, or its failure class where the error
    has no finite size (a flush to zero, a NaN where a number is due)."""
    if worst.get("ulp") is None:
        return worst.get("class") or "no finite ULP distance"
    return f"{worst['ulp']:.3g} ULP"
