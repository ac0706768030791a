"""Plugin discovery: entry points in the group ``refact.backends``.

(a) With monkeypatched entry points: a good plugin is listed as available and usable
    through ``get_backend``; plugins that fail to import, to construct, that are not
    Backend classes, or that reuse a built-in name are listed with their error, and
    the others are unaffected.
(b) The plugin of README.md ("Writing a backend"), read from its code blocks, installed into
    a temporary virtual environment and discovered there.
"""

import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from importlib import metadata
from pathlib import Path

import pytest

import refact.backends as rb
from refact.backends import Backend, Binding

DOC = Path(__file__).resolve().parents[2] / "README.md"


class GoodBackend(Backend):
    name = "good"
    module = "math"

    def load(self):
        return {"sigmoid": Binding(lambda x: x, "math.tanh", gradient=False)}

    def formats_on(self, device):
        return ("float64",)


class ExplodingBackend(Backend):
    name = "exploding"
    module = "math"

    def load(self):
        raise RuntimeError("this plugin is broken on purpose")


class NotABackend:
    name = "notabackend"


def _entry_point(name, attribute):
    return metadata.EntryPoint(name=name, value=f"{__name__}:{attribute}",
                               group=rb.ENTRY_POINT_GROUP)


@pytest.fixture
def fake_plugins(monkeypatch):
    points = [
        _entry_point("good", "GoodBackend"),
        _entry_point("exploding", "ExplodingBackend"),
        _entry_point("notabackend", "NotABackend"),
        metadata.EntryPoint(name="missing", value="refact_test_no_such_plugin:Backend",
                            group=rb.ENTRY_POINT_GROUP),
        _entry_point("numpy", "GoodBackend"),        # shadows a built-in
        _entry_point("mislabelled", "GoodBackend"),  # class calls itself "good"
    ]

    def entry_points(**selection):
        assert selection == {"group": rb.ENTRY_POINT_GROUP}
        return points

    monkeypatch.setattr(metadata, "entry_points", entry_points)
    # discovery constructs each backend in a spawned process, which imports this module
    # by its name (tests.backends.test_plugins) from the parent's sys.path
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    return points


def test_discovery_lists_good_and_broken_plugins(fake_plugins):
    names = ["good", "exploding", "notabackend", "missing", "numpy", "mislabelled", "reference"]
    infos = rb.discover(names=names)
    by_origin = {(i.name, i.origin): i for i in infos}

    good = by_origin["good", "plugin"]
    assert good.available and good.error is None
    assert good.functions == ("sigmoid",) and good.formats == ("float64",)
    assert good.target.endswith(":GoodBackend")

    expected_errors = {
        "exploding": "RuntimeError: this plugin is broken on purpose",
        "notabackend": "is not a subclass of refact.backends.Backend",
        "missing": "No module named 'refact_test_no_such_plugin'",
        "numpy": "uses the name of the built-in backend 'numpy'",
        "mislabelled": "calls itself 'good'",
    }
    for name, message in expected_errors.items():
        info = by_origin[name, "plugin"]
        assert not info.available and message in info.error, (name, info.error)

    # the built-ins are listed and unaffected, including the one a plugin tried to shadow
    assert by_origin["numpy", "builtin"].available
    assert by_origin["reference", "builtin"].origin == "builtin"


def test_get_backend_finds_an_entry_point_plugin(fake_plugins):
    backend = rb.get_backend("good")
    assert isinstance(backend, GoodBackend)
    assert backend.call("sigmoid", 0.25) == 0.25
    assert rb.backend_class("numpy").__name__ == "NumpyBackend"   # built-in wins
    with pytest.raises(RuntimeError, match="broken on purpose"):
        rb.get_backend("exploding")


def test_a_target_can_be_named_directly():
    backend = rb.get_backend(f"{__name__}:GoodBackend")
    assert backend.name == "good"


# -- (b) the documented plugin, really installed -------------------------------------------


def _documented_files():
    """``{file name: text}`` of the fenced blocks whose info string names a file."""
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"^```\w+ (\S+)\n(.*?)^```", text, flags=re.M | re.S)
    return {name: body for name, body in blocks}


def test_documentation_holds_a_complete_plugin():
    files = _documented_files()
    assert set(files) == {"pyproject.toml", "refact_statistics_backend.py"}
    assert '[project.entry-points."refact.backends"]' in files["pyproject.toml"]
    compile(files["refact_statistics_backend.py"], "refact_statistics_backend.py", "exec")


def test_documented_plugin_installs_and_is_discovered(tmp_path):
    project = tmp_path / "refact-statistics-backend"
    project.mkdir()
    for name, body in _documented_files().items():
        (project / name).write_text(body, encoding="utf-8")

    # A fresh environment that sees this interpreter's packages (refact, its frameworks,
    # pip and setuptools) through a .pth file, so nothing is downloaded; the plugin itself
    # is installed into the new environment only.
    env_dir = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    site_dir = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True).stdout.strip()
    parents = [p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}]
    lines = "".join(f"import site; site.addsitedir({p!r})\n" for p in parents)
    Path(site_dir, "refact_parent_environment.pth").write_text(lines, encoding="utf-8")

    environment = {k: v for k, v in os.environ.items()
                   if k not in ("PIP_TARGET", "PIP_PREFIX", "PIP_USER", "PYTHONNOUSERSITE")}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
         "--disable-pip-version-check", "--quiet", str(project)],
        capture_output=True, text=True, env=environment, cwd=tmp_path)
    assert install.returncode == 0, install.stdout + install.stderr

    probe = textwrap.dedent("""
        import json, sys
        from refact.backends import discover, get_backend
        [info] = discover(names=["statistics"])
        backend = get_backend("statistics")
        ndtr = backend.tolist(backend.call("ndtr", backend.asarray([0.0, 1.0], "float64")))
        print(json.dumps({"info": info.to_dict(), "ndtr": ndtr, "prefix": sys.prefix}))
    """)
    run = subprocess.run([str(python), "-c", probe], capture_output=True, text=True,
                         env=environment, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    info = result["info"]
    assert info["available"], info["error"]
    assert info["origin"] == "plugin"
    assert info["target"] == "refact_statistics_backend:StatisticsBackend"
    assert info["n_functions"] == 2 and info["formats"] == ["float64"]
    assert result["ndtr"] == [[0.5, 0.8413447460685429], "float64"]
    assert Path(result["prefix"]).resolve() == env_dir.resolve()

    # and not visible from this interpreter: the plugin went into the temporary environment
    assert "statistics" not in rb.plugin_targets()
