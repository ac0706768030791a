"""Inline SVG plots for the HTML report, drawn here: no script, no library, no external file.

Two pictures are drawn: the true function and its derivative (the report's ``curves``),
and the error of one backend, function and format against its input (the report's
``series``). An error plot draws every judged point of its series: points are snapped
to a grid of DOT_GRID pixels and a pixel is drawn once, so thousands of points cost a
few kilobytes and none is left out. A point without a finite error (NaN where a number
was due, a flush, ...) is drawn on a band at the top edge, marked by its failure class.
An error plot has two views: the active region, where the points that are not
correctly rounded are (linear when it is narrow), and the full range of the inputs on a
symmetric-log axis, from -1e308 to 1e308 if the series goes there.
"""

import html
import math
from typing import NamedTuple

from refact.conformance.report.model import format_number, spell_control_characters

__all__ = [
    "PLOT_WIDTH", "PLOT_HEIGHT", "FULL_WIDTH", "MAX_CURVE_POINTS", "SYMLOG_ABOVE", "CLASS_COLORS",
    "Scale", "choose_scale", "scale_ticks", "downsample", "curve_plot", "series_points", "active_range",
    "error_plots", "ErrorPoint",
]

PLOT_WIDTH, PLOT_HEIGHT = 460, 230      # the active-region view of an error plot, and curve plots
FULL_WIDTH = 300                         # the full-range view beside it
LEFT, RIGHT, TOP, BOTTOM = 52, 10, 34, 34
BAND = 12                                # the band at the top of an error plot for class points
DOT_GRID = 2                             # pixels: points closer than this share one dot
MAX_CURVE_POINTS = 2000
SYMLOG_ABOVE = 1e4                       # an axis reaching beyond this magnitude is symmetric-log
ERROR_COLOR, CURVE_COLORS = "#1f5fbf", ("#1f5fbf", "#c0392b")
#: Failure classes by colour, so the legend and the dots agree in every plot.
CLASS_COLORS = {
    "spurious_nan": "#d62728", "spurious_inf": "#ff7f0e", "missing_inf": "#8c564b",
    "wrong_sign_zero": "#e377c2", "flush_to_zero": "#9467bd", "premature_underflow": "#17becf",
    "premature_overflow": "#bcbd22", "missing_nan": "#7f7f7f", "undecided": "#555555",
    "convention": "#2ca02c",
}


def _class_color(kind):
    # "a or b" (a class the series did not name, one of the record's): black
    return CLASS_COLORS.get(kind, "#000000")


def _h(text):
    return html.escape(spell_control_characters(text))


def _symlog(value, unit):
    # log10(1 + |v|/unit) with the sign of v: linear within a unit of 0, logarithmic far out,
    # defined at 0 (a ULP error of 0 is common) and for negative inputs.
    ratio = abs(value) / unit
    magnitude = math.log10(1 + ratio) if math.isfinite(ratio) else math.log10(abs(value)) - math.log10(unit)
    return math.copysign(magnitude, value)


class Scale(NamedTuple):
    low: float
    high: float
    symlog: bool
    unit: float = 1.0   # where a symmetric-log axis turns from linear to logarithmic

    def transform(self, value):
        return _symlog(value, self.unit) if self.symlog else value

    def fraction(self, value):
        low, high = self.transform(self.low), self.transform(self.high)
        return (self.transform(value) - low) / (high - low)


def _finite(values):
    return [value for value in values if isinstance(value, (int, float)) and math.isfinite(value)]


def choose_scale(values, include=(), symlog_above=SYMLOG_ABOVE, unit=None):
    """An axis over the finite ``values`` and ``include``: symmetric-log when they reach
    beyond ``symlog_above`` in magnitude, else linear. A symmetric-log axis is linear
    within ``unit`` of 0: by default the smallest nonzero magnitude (at most 1), so inputs
    like 1e-30 stay apart from 0; an error axis passes 1 (an error below 1 ULP is linear)."""
    finite = _finite(list(values) + list(include))
    if not finite:
        return Scale(0.0, 1.0, False)
    low, high = float(min(finite)), float(max(finite))
    if low == high:
        pad = abs(low) / 2 or 1.0
        low, high = low - pad, high + pad
    if max(abs(low), abs(high)) <= symlog_above:
        return Scale(low, high, False)
    if unit is None:
        unit = min(1.0, max(min((abs(value) for value in finite if value != 0), default=1.0), 1e-300))
    return Scale(low, high, True, unit)


def _linear_ticks(low, high):
    raw = (high - low) / 5
    magnitude = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 0.0
    if magnitude == 0:  # a range narrower than the subnormals: label its ends only
        return [low, high]
    step = next(factor * magnitude for factor in (1, 2, 5, 10) if factor * magnitude >= raw)
    first = math.ceil(low / step)
    return [index * step for index in range(first, math.floor(high / step) + 1)]


def _symlog_ticks(scale, most=7):
    # Powers of ten every few decades, counted down from the largest, so the ends of a
    # range out to 1e308 are labelled; 0 where the range crosses it.
    reach = max(abs(scale.low), abs(scale.high))
    top, bottom = math.floor(math.log10(reach)), math.ceil(math.log10(scale.unit))
    sides = 2 if scale.low < 0 < scale.high else 1
    stride = max(1, math.ceil((top - bottom + 1) * sides / max(1, most - 1)))
    ticks = [0.0] if scale.low <= 0 <= scale.high else []
    for exponent in range(top, bottom - 1, -stride):
        ticks += [tick for tick in (10.0 ** exponent, -(10.0 ** exponent)) if scale.low <= tick <= scale.high]
    return sorted(ticks)


def scale_ticks(scale, most=7):
    return _symlog_ticks(scale, most) if scale.symlog else _linear_ticks(scale.low, scale.high)


def _tick_text(value):
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-3:
        mantissa, exponent = f"{value:.0e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{value:g}"


def downsample(points, limit=MAX_CURVE_POINTS, keep_largest_y=0):
    """At most ``limit`` points, evenly strided, always keeping the ``keep_largest_y`` largest y."""
    if len(points) <= limit:
        return list(points)
    kept = set()
    if keep_largest_y:
        largest_first = sorted(range(len(points)), key=lambda index: points[index][1], reverse=True)
        kept.update(largest_first[:keep_largest_y])
    others = [index for index in range(len(points)) if index not in kept]
    stride = len(others) / (limit - len(kept))
    kept.update(others[int(step * stride)] for step in range(limit - len(kept)))
    return [points[index] for index in sorted(kept)]


class Frame(NamedTuple):
    x: Scale
    y: Scale
    width: int
    height: int
    top: int = TOP      # the data area starts here (below the class band of an error plot)

    @property
    def right(self):
        return self.width - RIGHT

    @property
    def bottom(self):
        return self.height - BOTTOM

    def px(self, x):
        return LEFT + self.x.fraction(x) * (self.right - LEFT)

    def py(self, y):
        return self.top + (1 - self.y.fraction(y)) * (self.bottom - self.top)


def _svg_open(width, height, title):
    return (f'<svg class="plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img"><title>{_h(title)}</title>')


def _spaced(ticks, position, gap):
    """The ticks whose labels do not overlap (``gap`` pixels apart), 0 kept first."""
    kept = []
    for tick in sorted(ticks, key=lambda tick: tick != 0):
        if all(abs(position(tick) - position(other)) >= gap for other in kept):
            kept.append(tick)
    return sorted(kept)


def _axes(frame, x_label, y_label, box_top):
    # one path for the grid and one group per label alignment: a report holds hundreds of plots
    most = 7 if frame.width >= PLOT_WIDTH else 4
    x_ticks = [(frame.px(tick), tick) for tick in _spaced(scale_ticks(frame.x, most), frame.px, 30)]
    y_ticks = [(frame.py(tick), tick) for tick in _spaced(scale_ticks(frame.y, 5), frame.py, 11)]
    grid = "".join(f"M{px:.0f} {box_top}V{frame.bottom}" for px, _ in x_ticks)
    grid += "".join(f"M{LEFT} {py:.0f}H{frame.right}" for py, _ in y_ticks)
    parts = [f'<path d="{grid}" stroke="#eee"/>' if grid else "",
             f'<rect x="{LEFT}" y="{box_top}" width="{frame.right - LEFT}" height="{frame.bottom - box_top}" '
             'fill="none" stroke="#999"/>',
             '<g text-anchor="middle">',
             *(f'<text x="{px:.0f}" y="{frame.bottom + 13}">{_tick_text(tick)}</text>' for px, tick in x_ticks),
             f'<text x="{(LEFT + frame.right) / 2:.0f}" y="{frame.height - 6}">{_h(x_label)}</text>',
             f'<text transform="translate(11 {(frame.top + frame.bottom) / 2:.0f}) rotate(-90)">{_h(y_label)}</text>',
             '</g><g text-anchor="end">',
             *(f'<text x="{LEFT - 3}" y="{py + 4:.0f}">{_tick_text(tick)}</text>' for py, tick in y_ticks),
             "</g>"]
    return parts


def _line_path(frame, points):
    commands, pen_down = [], False
    for x, y in points:
        if not (math.isfinite(x) and math.isfinite(y)):
            pen_down = False  # a gap, not a line through a missing value
            continue
        commands.append(f"{'L' if pen_down else 'M'}{frame.px(x):.1f} {frame.py(y):.1f}")
        pen_down = True
    return "".join(commands)


def _dot_path(cells):
    # Zero-length segments with round caps draw dots; relative moves between grid cells
    # (the path is scaled by the grid) keep each a few bytes.
    parts, last = [], (0, 0)
    for cx, cy in sorted(cells):
        parts.append(f"m{cx - last[0]} {cy - last[1]}h0")
        last = (cx, cy)
    return "M0 0" + "".join(parts)


def _as_real(value):
    return value if isinstance(value, (int, float)) else math.nan  # null (undecided) is not drawn


def curve_plot(function, curve):
    """The function and its derivative on one picture, as the classic sigmoid figure."""
    layers = [(function, downsample([(_as_real(x), _as_real(y)) for x, y in zip(curve.get("x") or [], curve.get("y") or [])]))]
    if curve.get("dy"):
        layers.append((f"derivative of {function}",
                       downsample([(_as_real(x), _as_real(y)) for x, y in zip(curve.get("x") or [], curve["dy"])])))
    xs = [x for _, points in layers for x, _ in points]
    ys = [y for _, points in layers for _, y in points]
    frame = Frame(choose_scale(xs, symlog_above=100.0), choose_scale(ys, symlog_above=100.0), PLOT_WIDTH, PLOT_HEIGHT)
    title = f"{function} and its derivative"
    parts = [_svg_open(PLOT_WIDTH, PLOT_HEIGHT, title), f'<text x="{LEFT}" y="13" font-weight="bold">{_h(title)}</text>']
    parts += _axes(frame, "x", "value", TOP)
    legend_x = LEFT
    for (label, points), color in zip(layers, CURVE_COLORS):
        parts.append(f'<path d="{_line_path(frame, points)}" stroke="{color}" stroke-width="2" fill="none"/>')
        parts.append(f'<rect x="{legend_x}" y="{TOP - 12}" width="9" height="9" fill="{color}"/>'
                     f'<text x="{legend_x + 12}" y="{TOP - 4}">{_h(label)}</text>')
        legend_x += 24 + 6 * len(label)
    parts.append("</svg>")
    return "".join(parts)


class ErrorPoint(NamedTuple):
    x: float
    ulp: float       # NaN for a point in a failure class
    kind: str        # "" for an ordinary point, else the failure class (or "convention")


def _input_of(point):
    value = point.get("input")
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, (int, float)) else None


UNNAMED = "failure class not named"


def _record_classes(record):
    counted = [name for name, count in ((record or {}).get("classes") or {}).items() if count and name != "undecided"]
    return " or ".join(counted) if counted else UNNAMED


def series_points(series, record=None):
    """The judged points of a series as :class:`ErrorPoint`. A point without a finite error
    takes its class from the series' optional ``class`` list, else from a worst point of
    the record at the same input, else from the record's counted classes ("flush_to_zero",
    or "flush_to_zero or premature_underflow" when it counted several)."""
    classes = series.get("class") or []
    unnamed = _record_classes(record)
    named = {}
    for point in (record or {}).get("worst") or []:
        x = _input_of(point)
        if x is not None and (point.get("class") or point.get("convention")):
            named[x] = point.get("class") or "convention"
    points = []
    for index, (x, ulp) in enumerate(zip(series.get("x") or [], series.get("ulp") or [])):
        x = _as_real(x)
        if not math.isfinite(x):
            continue
        ulp = _as_real(ulp)
        if math.isfinite(ulp):
            points.append(ErrorPoint(x, ulp, ""))
        else:
            kind = classes[index] if index < len(classes) and classes[index] else named.get(x, unnamed)
            points.append(ErrorPoint(x, math.nan, str(kind)))
    return points


def _quantile(sorted_values, q):
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def active_range(points):
    """Where a plot's inputs are worth a close look: the central 96% of the points that
    are not correctly rounded (class points included), or of all points when every one
    is; widened to the outer ones within that width again (so a failure just outside is
    not cut off, and one at 1e30 does not squeeze the rest), and by a twentieth."""
    interesting = sorted(point.x for point in points if point.kind or point.ulp > 0.5)
    xs = interesting if len(interesting) >= 5 else sorted(point.x for point in points)
    if not xs:
        return 0.0, 1.0
    low, high = _quantile(xs, 0.02), _quantile(xs, 0.98)
    width = high - low
    low = min(x for x in xs if x >= low - width)
    high = max(x for x in xs if x <= high + width)
    pad = (high - low) / 20 or abs(low) / 20 or 1.0
    return low - pad, high + pad


def _legend_rows(legend, width):
    """The legend's entries as rows of (x, label, colour) that fit the plot's width."""
    rows, x = [[]], LEFT
    for label, color in legend:
        size = 22 + 6 * len(label)
        if rows[-1] and x + size > width - RIGHT:
            rows.append([])
            x = LEFT
        rows[-1].append((x, label, color))
        x += size
    return rows if legend else []


def _error_view(points, x_scale, y_scale, width, budget, title, x_label, legend, grid=DOT_GRID):
    rows = _legend_rows(legend, width)
    box_top = TOP + 12 * max(0, len(rows) - 1)
    frame = Frame(x_scale, y_scale, width, PLOT_HEIGHT, box_top + BAND)
    parts = [_svg_open(width, PLOT_HEIGHT, title), f'<text x="{LEFT}" y="13" font-weight="bold">{_h(title)}</text>']
    parts += _axes(frame, x_label, "error (ULP)", box_top)
    parts.append(f'<path d="M{LEFT} {frame.top}H{frame.right}" stroke="#bbb" stroke-dasharray="2 2"/>')
    ordinary, by_kind = set(), {}
    band = round((box_top + BAND / 2) / grid)
    for point in points:
        if not x_scale.low <= point.x <= x_scale.high:
            continue
        cx = round(frame.px(point.x) / grid)
        if point.kind:
            by_kind.setdefault(point.kind, set()).add((cx, band))
        else:
            ordinary.add((cx, round(frame.py(min(point.ulp, y_scale.high)) / grid)))
    if ordinary:
        parts.append(f'<path transform="scale({grid})" d="{_dot_path(ordinary)}" stroke="{ERROR_COLOR}" '
                     f'stroke-width="{3 / grid:g}" stroke-linecap="round" stroke-opacity="0.6" fill="none"/>')
    for kind, cells in sorted(by_kind.items()):
        parts.append(f'<path transform="scale({grid})" d="{_dot_path(cells)}" stroke="{_class_color(kind)}" '
                     f'stroke-width="{5 / grid:g}" stroke-linecap="square" fill="none"/>')
    if budget is not None and math.isfinite(budget) and y_scale.low <= budget <= y_scale.high:
        py = frame.py(budget)
        parts.append(f'<path d="M{LEFT} {py:.0f}H{frame.right}" stroke="#000" stroke-dasharray="6 4"/>'
                     f'<text x="{frame.right - 3}" y="{py - 3:.0f}" text-anchor="end">budget {format_number(budget)}</text>')
    for index, row in enumerate(rows):
        y = TOP - 5 + 12 * index
        for x, label, color in row:
            parts.append(f'<rect x="{x}" y="{y - 8}" width="9" height="9" fill="{color}"/>'
                         f'<text x="{x + 12}" y="{y}">{_h(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def error_plots(series, record=None, x_label="input"):
    """The two views of one series (active region, full range) and their caption."""
    points = series_points(series, record)
    budget = series.get("budget_ulp")
    if budget is None and record is not None:
        budget = record.get("budget_ulp")
    budget = budget if isinstance(budget, (int, float)) else None
    ulps = [point.ulp for point in points if not point.kind]
    y_scale = choose_scale(ulps, [0.0] + ([budget] if budget is not None and math.isfinite(budget) else []),
                           symlog_above=100.0, unit=1.0)
    kinds = {}
    for point in points:
        if point.kind:
            kinds[point.kind] = kinds.get(point.kind, 0) + 1
    legend = [(f"{kind} ({count})", _class_color(kind)) for kind, count in sorted(kinds.items())]
    low, high = active_range(points)
    active = [point for point in points if low <= point.x <= high]
    active_scale = choose_scale([point.x for point in active] or [low, high], symlog_above=SYMLOG_ABOVE)
    full_scale = choose_scale([point.x for point in points], symlog_above=SYMLOG_ABOVE)
    title = " / ".join(str(series.get(field, "?")) for field in ("backend", "function", "format"))
    views = [_error_view(points, active_scale, y_scale, PLOT_WIDTH, budget, f"{title}: active region", x_label, legend)]
    caption = f"{len(points)} judged points drawn"
    if len(active) < len(points):
        # the full range is coarser: it shows where the points are, the active region how large
        views.append(_error_view(points, full_scale, y_scale, FULL_WIDTH, budget, "full range", x_label, [],
                                 grid=2 * DOT_GRID))
        caption += f" ({len(active)} in the active region {_tick_text(low)} to {_tick_text(high)})"
    if kinds:
        caption += "; " + ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) + " at the top edge"
    return views, caption
