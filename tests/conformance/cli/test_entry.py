"""The ``refact`` command itself: ``--version``, and a missing extra as one line naming the
pip install to run (never a traceback)."""

import platform
import subprocess
import sys
from importlib import metadata

import pytest

import refact
from refact.conformance import cli

# A process whose imports of the given top-level modules fail as if they were not
# installed, then runs the command with its arguments.
HIDING = """\
import sys
from importlib.abc import MetaPathFinder

HIDDEN = set(sys.argv[1].split(","))

class Hide(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Hide())
from refact.conformance.cli import main
sys.exit(main(sys.argv[2:]))
"""


def run_hiding(hidden, *arguments):
    return subprocess.run([sys.executable, "-c", HIDING, ",".join(hidden), *arguments],
                          capture_output=True, text=True, timeout=120)


def test_version_names_the_distribution_its_version_and_python(capsys):
    assert cli.main(["--version"]) == 0
    expected = f"refact-numerics {metadata.version('refact-numerics')} (Python {platform.python_version()})"
    assert capsys.readouterr().out == expected + "\n"
    # one version: the installed metadata says what the package says
    assert metadata.version("refact-numerics") == refact.__version__


def test_version_of_the_installed_command():
    done = subprocess.run([sys.executable, "-m", "refact.conformance.cli", "--version"],
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.startswith(f"refact-numerics {refact.__version__} (Python ")


def test_help_documents_the_exit_status_of_a_missing_extra(capsys):
    assert cli.main(["--help"]) == 0
    assert "2 a usage error or a missing extra" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("hidden", [("numpy", "mpmath"), ("mpmath",), ("numpy",)])
def test_conform_without_the_conformance_extra_is_one_line(hidden):
    done = run_hiding(hidden, "conform", "--backend", "reference", "--function", "sigmoid")
    assert done.returncode == cli.EXIT_USAGE == 2
    assert done.stderr == 'refact conform needs the conformance extra: pip install "refact-numerics[conformance]"\n'
    assert done.stdout == ""


def test_truth_without_mpmath_is_one_line():
    done = run_hiding(("mpmath", "gmpy2"), "truth", "sigmoid", "1")
    assert done.returncode == 2
    assert done.stderr == 'refact truth needs the conformance extra: pip install "refact-numerics[conformance]"\n'


def test_a_missing_module_no_extra_provides_is_a_traceback(monkeypatch):
    # a bug (say an import of a misspelled module) must not be disguised as a missing extra
    def broken(name):
        raise ModuleNotFoundError("No module named 'nmupy'", name="nmupy")

    monkeypatch.setattr(cli.importlib, "import_module", broken)
    with pytest.raises(ModuleNotFoundError, match="nmupy"):
        cli.main(["conform"])


def test_missing_extra_follows_the_cause_of_a_reworded_import_error():
    try:
        try:
            raise ModuleNotFoundError("No module named 'jsonschema'", name="jsonschema")
        except ImportError as missing:
            raise ImportError("validating a report needs the jsonschema package") from missing
    except ImportError as error:
        assert cli.missing_extra(error) == "conformance"
    assert cli.missing_extra(ImportError("No module named 'distributed'", name="distributed")) == "sweep"
    assert cli.missing_extra(ImportError("No module named 'yaml'", name="yaml")) is None
