"""``refact backends [--json] [--device DEVICE]``: list built-in and plugin backends.

For each backend, one line for each of its variants (``torch[eager]``, ``torch[compile]``):
name, framework version, whether it is available here (and why not),
devices, formats, the number of canonical functions it provides (of 15) and the names of
its declared conventions. Constructing a backend imports its framework, so this command
takes as long as importing all of them; a backend that fails is listed with its error.
"""

import json

from . import FUNCTIONS, discover, variant_name


def add_arguments(parser):
    parser.add_argument("--json", action="store_true",
                        help="print a JSON list of backends instead of a table")
    parser.add_argument("--device", default="cpu",
                        help="device to construct each backend on (default: cpu)")


def _convention_names(conventions):
    """``["softplus:softplus_threshold", ...]`` -> unique names in order of appearance."""
    names = []
    for entry in conventions:
        name = entry.split(":", 1)[-1]
        if name not in names:
            names.append(name)
    return names


def _rows(infos):
    header = ("backend", "version", "status", "devices", "formats", "functions", "conventions",
              "variants")
    rows = [header]
    for info in infos:
        status = "available" if info.available else f"unavailable: {info.error}"
        if info.origin == "plugin":
            status += " (plugin)"
        rows.append((
            variant_name(info.name, info.variant), info.version or "-", status, ",".join(info.devices) or "-",
            ",".join(info.formats) or "-",
            f"{len(info.functions)}/{len(FUNCTIONS)}" if info.available else "-",
            ", ".join(_convention_names(info.conventions)) or "-",
            ",".join(name for name, _ in info.variants) or "-",
        ))
    return rows


def format_table(infos):
    """The listing as aligned text columns; the status column of an unavailable backend
    carries its reason, so it is printed last on its line when long."""
    rows = _rows(infos)
    order = (0, 1, 3, 4, 5, 6, 7, 2)  # status last: reasons can be long
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[i].ljust(widths[i]) if i != 2 else row[i] for i in order]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def run(args):
    infos = discover(device=args.device)
    if args.json:
        print(json.dumps([info.to_dict() for info in infos], indent=2))
    else:
        print(format_table(infos))
    return 0
