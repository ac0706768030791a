"""The distribution refact-numerics: one `refact` namespace, a stdlib-only core, no required
dependencies, the `refact` command."""

import ast
import pathlib
import subprocess
import sys
import venv
import zipfile

import pytest

import refact

ROOT = pathlib.Path(__file__).resolve().parents[2]
THIRD_PARTY = {"numpy", "scipy", "mpmath", "gmpy2", "torch", "tensorflow", "jax", "keras", "ml_dtypes"}


def test_core_sources_import_only_the_standard_library():
    core = pathlib.Path(refact.__file__).parent
    for source in core.glob("*.py"):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names, f"{source.name} imports {name}"


def test_import_refact_loads_no_third_party_module():
    code = (
        "import sys, refact\n"
        "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & %r)))" % THIRD_PARTY
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_core_imports_without_site_packages():
    # python -S: no site-packages at all, the core folder alone on the path, as when vendored.
    code = "import sys; sys.path.insert(0, %r); import refact; print(refact.sigmoid(-710.0))" % str(
        pathlib.Path(refact.__file__).parent.parent)
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == 4.47628622567513e-309  # correctly rounded, per the oracle


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(ROOT)],
        check=True,
    )
    (path,) = out.glob("refact_numerics-*.whl")
    return path


def test_wheel_has_one_namespace_and_no_required_dependencies(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        fields = archive.read(metadata).decode().splitlines()
        requires = [line for line in fields if line.startswith("Requires-Dist:")]
        entry_points = archive.read(next(n for n in names if n.endswith(".dist-info/entry_points.txt"))).decode()
    # "refact" on the package index is another project: the distribution has its own name
    assert "Name: refact-numerics" in fields
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"refact"}
    assert "refact/backends/__init__.py" in names
    assert "refact/conformance/__init__.py" in names
    assert "refact/conformance/cli/__init__.py" in names
    assert "refact/conformance/run/runner.py" in names
    # every requirement belongs to an extra: a plain `pip install refact-numerics` installs nothing else
    assert requires and all("extra ==" in line for line in requires)
    # an extra naming another extra names this distribution, never the other "refact"
    assert not [line for line in requires if line.split()[1].startswith("refact[")]
    assert 'Requires-Dist: refact-numerics[conformance]; extra == "sweep"' in requires
    assert "refact = refact.conformance.cli:main" in entry_points.splitlines()


def test_regular_install_into_a_fresh_venv(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps", str(wheel)],
                   check=True)
    code = (
        "import refact, refact.backends, refact.conformance, sys\n"
        "print(refact.softmax([1, 2, 3, 4, -3, -4, -2, -10000])[-1])"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert out.stdout.strip() == "0.0"
    listing = subprocess.run([str(python), "-m", "pip", "list", "--format=freeze"],
                             capture_output=True, text=True, check=True).stdout
    installed = {line.split("==")[0].lower() for line in listing.split()}
    assert installed <= {"refact-numerics", "pip", "setuptools", "wheel"}
    version = subprocess.run([str(env_dir / "bin" / "refact"), "--version"], capture_output=True,
                             text=True, check=True, cwd=tmp_path).stdout
    assert version.startswith(f"refact-numerics {refact.__version__} (Python ")
    # the core alone has no numpy or mpmath: the suite says which extra to install, in one line
    done = subprocess.run([str(env_dir / "bin" / "refact"), "conform", "--backend", "reference"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == 'refact conform needs the conformance extra: pip install "refact-numerics[conformance]"\n'
