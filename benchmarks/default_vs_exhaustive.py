"""How close the default run's worst error comes to the exhaustive sweep's, per backend
and function in float32 (issue 11's target: within 5%).

    refact conform --format float32 --json default.json
    refact sweep --function sigmoid --backend torch --format float32 --exhaustive --json torch-sigmoid.json
    python benchmarks/default_vs_exhaustive.py default.json torch-sigmoid.json ... [--markdown]

Each sweep file holds one exhaustive accuracy record; it is matched with the default
run's accuracy record of the same backend (default variant), function and format. The
table gives both maxima over the ordinary points (ULP), their ratio, and the failure
classes the sweep found that the default run's record does not name (a class the dense
set misses is a verdict the default run gets wrong, whatever its maximum).
"""

import argparse
import json
import sys


def _report(path):
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _records(path):
    return _report(path)["results"]


def _default_variants(report):
    """``{backend: its default variant}`` (the first its class declares; None if it runs
    one way), for the backends of ``report``."""
    from refact.backends import backend_class

    return {entry["name"]: next(iter(backend_class(entry["name"]).variants), None)
            for entry in report.get("backends", [])}


def _classes(record):
    return {name for name, count in (record.get("classes") or {}).items() if count}


def rows(default_path, sweep_paths):
    report = _report(default_path)
    variants = _default_variants(report)
    # a sweep runs a backend's default variant: that is the column it is compared with
    default = {(r["backend"], r["function"], r["format"]): r for r in report["results"]
               if r["check"] == "accuracy" and r.get("variant") == variants.get(r["backend"])}
    out = []
    for path in sweep_paths:
        for sweep in _records(path):
            key = (sweep["backend"], sweep["function"], sweep["format"])
            mine = default.get(key)
            exhaustive = sweep.get("max_ulp")
            found = None if mine is None else mine.get("max_ulp")
            ratio = (found / exhaustive if found is not None and exhaustive
                     else (1.0 if found == exhaustive else None))
            missed = sorted(_classes(sweep) - (set() if mine is None else _classes(mine)))
            out.append({"backend": key[0], "function": key[1], "format": key[2],
                        "default": found, "exhaustive": exhaustive, "ratio": ratio,
                        "missed_classes": missed, "points": sweep.get("points")})
    return sorted(out, key=lambda r: (r["backend"], r["function"]))


def _ulp(value):
    return "—" if value is None else f"{value:.4g}"


def render(table, markdown):
    head = ["backend", "function", "default max ULP", "exhaustive max ULP", "default/exhaustive",
            "within 5%", "classes the default misses"]
    lines = []
    body = []
    for r in table:
        within = "—" if r["ratio"] is None else ("yes" if r["ratio"] >= 0.95 else "no")
        body.append([r["backend"], r["function"], _ulp(r["default"]), _ulp(r["exhaustive"]),
                     "—" if r["ratio"] is None else f"{r['ratio']:.3f}", within,
                     ", ".join(r["missed_classes"]) or "none"])
    if markdown:
        lines.append("| " + " | ".join(head) + " |")
        lines.append("|" + "---|" * len(head))
        lines += ["| " + " | ".join(row) + " |" for row in body]
    else:
        widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
        for row in [head] + body:
            lines.append("  ".join(str(x).ljust(w) for x, w in zip(row, widths)))
    met = [r for r in table if r["ratio"] is not None]
    good = sum(1 for r in met if r["ratio"] >= 0.95 and not r["missed_classes"])
    lines.append("")
    lines.append(f"{good} of {len(table)} within 5% of the exhaustive maximum with every class found")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("default", help="JSON report of a default refact conform run")
    parser.add_argument("sweeps", nargs="+", help="JSON reports of exhaustive refact sweep runs")
    parser.add_argument("--markdown", action="store_true", help="a Markdown table")
    args = parser.parse_args(argv)
    print(render(rows(args.default, args.sweeps), args.markdown))
    return 0


if __name__ == "__main__":
    sys.exit(main())
