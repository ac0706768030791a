"""The HTML report rendered by a real browser (headless Chromium): the page is not blank,
its overview matrix is in the rendered DOM, and the colours of the severities are on screen.

CI installs Chromium (.ci/run) and sets REFACT_REQUIRE_BROWSER=1, so there a missing
browser fails the test instead of skipping it.
"""

import math
import os
import shutil
import struct
import subprocess
import zlib

import pytest

from refact.conformance import cli
from refact.conformance.report import writers as reports
from refact.conformance.run.records import ALL_CLASSES, report_envelope

WIDTH, HEIGHT = 1280, 2000
CRITICAL_RGB = (0xF5, 0xA4, 0x9C)   # the background of a critical cell (html.STYLE's .critical)
PASS_RGB = (0xE2, 0xF3, 0xE2)       # and of a passing one (.pass)


def chromium():
    found = next((path for path in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if path), None)
    if found is None:
        if os.environ.get("REFACT_REQUIRE_BROWSER") == "1":
            pytest.fail("no chromium on PATH, and REFACT_REQUIRE_BROWSER=1 (CI installs it: .ci/run)")
        pytest.skip("no chromium on PATH (apt-get install chromium)")
    return found


def browse(html_path, profile, *action):
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", *action, html_path.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def png_pixels(data):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA PNG, decoded with zlib."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, chunks = 8, {}
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        chunks.setdefault(kind, []).append(data[position + 8:position + 8 + length])
        position += 12 + length
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"][0])
    assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(chunks[b"IDAT"]))
    stride = width * channels
    previous, rows = bytearray(stride), []
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, corner = previous[i], previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                estimate = left + up - corner
                distances = (abs(estimate - left), abs(estimate - up), abs(estimate - corner))
                line[i] = (line[i] + (left, up, corner)[distances.index(min(distances))]) & 0xFF
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows


def render(report, tmp_path, name):
    html_path = reports.write_html(report, tmp_path / f"{name}.html")
    screenshot = tmp_path / f"{name}.png"
    browse(html_path, tmp_path / f"{name}-profile", f"--screenshot={screenshot}")
    dom = browse(html_path, tmp_path / f"{name}-profile-dom", "--dump-dom")
    return screenshot.read_bytes(), dom


def hand_built_report():
    def record(backend, function, status, severity, max_ulp, **classes):
        return {"backend": backend, "function": function, "format": "float32", "check": "accuracy",
                "status": status, "severity": severity, "points": 100, "max_ulp": max_ulp, "p99_ulp": max_ulp,
                "mean_ulp": 0.3, "correctly_rounded": 0.9, "budget_ulp": 4.0, "convention": None,
                "message": "", "classes": {**dict.fromkeys(ALL_CLASSES, 0), **classes},
                "worst": [{"input": [-20.0], "input_hex": ["0xc1a00000"], "output": 0.0, "expected": 2.06e-9,
                           "ulp": math.inf, "class": "premature_underflow"}] if classes else []}

    results = [record("alpha", "sigmoid", "fail", "critical", 1e6, premature_underflow=3),
               record("alpha", "softplus", "pass", None, 0.5),
               record("beta", "sigmoid", "pass", None, 0.5),
               record("beta", "softplus", "fail", "major", 9.0)]
    backends = [{"name": name, "version": "1.0", "device": "cpu", "available": True, "error": None}
                for name in ("alpha", "beta")]
    report = report_envelope(results, backends)
    xs = [-40 + step * 0.1 for step in range(801)]
    report["series"] = [{"backend": "alpha", "function": "sigmoid", "format": "float32", "x": xs,
                         "ulp": [None if x < -30 else abs(math.sin(x)) * 3 for x in xs], "budget_ulp": 4.0}]
    reports.validate(report)
    return report


def assert_rendered(png, dom, expected_colours):
    width, height, rows = png_pixels(png)
    assert (width, height) == (WIDTH, HEIGHT)
    colours = {pixel for row in rows for pixel in row}
    assert len(colours) > 50, f"{len(colours)} colours: a blank page"
    assert {pixel for pixel in rows[60]} != {(255, 255, 255)} or len({pixel for row in rows[:200] for pixel in row}) > 10
    for colour in expected_colours:
        assert colour in colours, f"no pixel of {colour}: the matrix is not coloured"
    assert '<table class="matrix">' in dom and '<h2 id="overview">' in dom


def test_a_hand_built_report_renders_with_its_matrix_coloured(tmp_path):
    png, dom = render(hand_built_report(), tmp_path, "hand-built")
    assert_rendered(png, dom, [CRITICAL_RGB, PASS_RGB])
    assert 'href="#r-alpha-sigmoid-float32"' in dom and 'id="r-alpha-sigmoid-float32"' in dom


def test_a_real_run_renders_with_its_matrix_coloured(tmp_path):
    # a real run of two backends, with failures (torch's sigmoid flushes, softmax's NaN for +inf)
    json_path = tmp_path / "real.json"
    status = cli.main(["conform", "--backend", "numpy,torch", "--function", "sigmoid,softmax,logit",
                       "--format", "float32,float16", "--cases", "quick", "--quiet", "--json", str(json_path)])
    assert status in (0, 1)
    report = reports.load_report(json_path)
    assert report["summary"]["fail"] > 0
    png, dom = render(report, tmp_path, "real")
    assert_rendered(png, dom, [CRITICAL_RGB, PASS_RGB])
    assert dom.count('<table class="matrix">') == 2  # float32 and float16
