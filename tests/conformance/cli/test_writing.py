"""What the commands write when the disk says no, and how they end: a report that cannot be
written is one line naming it (the others are written, the exit status is 3, nothing at the
path is replaced), and Ctrl-C is one line and status 130 with no worker left behind."""

import errno
import json
import os
import pathlib
import signal
import stat
import subprocess
import sys
import time

import pytest

from refact.conformance import cli
from refact.conformance.report import writers as reports
from refact.conformance.truth import store

FAKES = pathlib.Path(__file__).parent.parent / "fakes"
QUICK = ["conform", "--backend", "reference", "--function", "sigmoid", "--format", "float64",
         "--cases", "quick", "--quiet"]
KINDS = {"--json": "JSON", "--markdown": "Markdown", "--junit": "JUnit", "--html": "HTML"}


def error_lines(capsys):
    return capsys.readouterr().err.splitlines()


def cannot_write_line(lines, option, path):
    """The one line about ``path``, checked up to the reason, which is returned."""
    prefix = f"refact: cannot write {KINDS[option]} report to {path}: "
    (line,) = [line for line in lines if line.startswith(prefix)]
    return line[len(prefix):]


def leftovers(directory):
    return sorted(path.name for path in directory.iterdir() if path.name.endswith(".tmp"))


def _quick_report(tmp_path):
    path = tmp_path / "quick.json"
    assert cli.main(QUICK + ["--json", str(path)]) == 0
    return path


# --- reports that cannot be written ------------------------------------------------------


def test_a_directory_a_fifo_and_a_symlink_are_refused_and_the_other_report_is_written(tmp_path, capsys):
    directory = tmp_path / "taken"
    directory.mkdir()
    fifo = tmp_path / "pipe.md"
    os.mkfifo(fifo)
    target = tmp_path / "target.xml"
    target.write_text("someone else's file")
    link = tmp_path / "link.xml"
    link.symlink_to(target)
    html = tmp_path / "report.html"
    status = cli.main(QUICK + ["--json", str(directory), "--markdown", str(fifo),
                               "--junit", str(link), "--html", str(html)])
    lines = error_lines(capsys)
    assert status == cli.EXIT_UNWRITTEN == 3
    assert len(lines) == 3, lines
    assert "directory" in cannot_write_line(lines, "--json", directory)
    assert "FIFO" in cannot_write_line(lines, "--markdown", fifo)
    assert "symbolic link" in cannot_write_line(lines, "--junit", link)
    assert directory.is_dir() and list(directory.iterdir()) == []
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert link.is_symlink() and target.read_text() == "someone else's file"
    assert "<svg" in html.read_text()
    assert leftovers(tmp_path) == []


def test_a_read_only_directory_and_a_parent_that_is_a_file(tmp_path, capsys, monkeypatch):
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    (read_only / "r.json").write_text("previous")
    read_only.chmod(0o555)
    try:
        (read_only / "probe").touch()
    except PermissionError:
        pass
    else:  # root writes anywhere: refuse as the kernel would for anyone else
        (read_only / "probe").unlink()
        real_mkstemp = store.tempfile.mkstemp

        def mkstemp(*args, dir=None, **kwargs):
            if pathlib.Path(dir) == read_only:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))
            return real_mkstemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(store.tempfile, "mkstemp", mkstemp)
    plain_file = tmp_path / "plain"
    plain_file.write_text("")
    missing_parent = tmp_path / "new" / "deeper" / "r.xml"
    try:
        status = cli.main(QUICK + ["--json", str(read_only / "r.json"),
                                   "--markdown", str(plain_file / "r.md"),
                                   "--junit", str(missing_parent)])
    finally:
        read_only.chmod(0o755)
    lines = error_lines(capsys)
    assert status == 3 and len(lines) == 2, lines
    assert cannot_write_line(lines, "--json", read_only / "r.json") == "Permission denied"
    reason = cannot_write_line(lines, "--markdown", plain_file / "r.md")
    assert "File exists" in reason or "Not a directory" in reason
    assert (read_only / "r.json").read_text() == "previous" and leftovers(read_only) == []
    assert plain_file.read_text() == ""
    assert "<testsuite" in missing_parent.read_text()  # a missing parent is made


def test_a_full_disk_fails_every_report_and_keeps_the_previous_ones(tmp_path, capsys, monkeypatch):
    paths = {option: tmp_path / f"report{option[1:]}" for option in KINDS}
    for path in paths.values():
        path.write_text("previous run")

    def disk_full(descriptor):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(store.os, "fsync", disk_full)
    status = cli.main(QUICK + [arg for option, path in paths.items() for arg in (option, str(path))])
    lines = error_lines(capsys)
    assert status == 3 and len(lines) == 4, lines
    for option, path in paths.items():
        assert cannot_write_line(lines, option, path) == "No space left on device"
        assert path.read_text() == "previous run"
    assert leftovers(tmp_path) == []


def test_an_unwritten_report_outranks_failed_checks(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(FAKES))  # spawned workers get the parent's sys.path
    taken = tmp_path / "taken"
    taken.mkdir()
    gate = ["conform", "--backend", "refact_test_backends:OffByThreeBackend", "--function", "sigmoid",
            "--format", "float64", "--check", "accuracy", "--cases", "quick", "--quiet"]
    assert cli.main(gate + ["--json", str(tmp_path / "r.json"), "--markdown", str(taken)]) == 3
    assert "directory" in cannot_write_line(error_lines(capsys), "--markdown", taken)
    assert json.loads((tmp_path / "r.json").read_text())["summary"]["fail"] == 1


def test_write_reports_collects_what_it_could_not_write(tmp_path):
    report = reports.load_report(_quick_report(tmp_path))
    taken = tmp_path / "taken"
    taken.mkdir()
    failures = {}
    written = reports.write_reports(report, json=taken, html=tmp_path / "r.html", failures=failures)
    assert set(written) == {"html"} and set(failures) == {"json"}
    assert isinstance(failures["json"], OSError)
    with pytest.raises(OSError):  # without a dict, the first error is raised ...
        reports.write_reports(report, json=taken, markdown=tmp_path / "r.md")
    assert (tmp_path / "r.md").exists()  # ... once the others are written



def test_an_invalid_report_is_not_written(tmp_path):
    """A report that does not follow the schema (here a status no CI knows) is written in
    no format: each is a failure naming the first violation, and old files stay."""
    report = reports.load_report(_quick_report(tmp_path))
    report["results"][0]["status"] = "fine"
    old = tmp_path / "r.json"
    old.write_text("previous")
    failures = {}
    written = reports.write_reports(report, json=old, markdown=tmp_path / "r.md", failures=failures)
    assert written == {} and set(failures) == {"json", "markdown"}
    assert str(failures["json"]).startswith("not written, the report does not follow refact.report/1")
    assert "$.results[0].status" in str(failures["json"]) and "'fine'" in str(failures["json"])
    assert old.read_text() == "previous" and not (tmp_path / "r.md").exists()
    with pytest.raises(reports.InvalidReport):
        reports.write_reports(report, json=old)


def test_sweep_and_diff_say_which_file_they_could_not_write(tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    status = cli.main(["sweep", "--function", "sigmoid", "--backend", "numpy", "--format", "float16",
                       "--range", "0x3c00:0x3cff", "--workers", "1", "--quiet", "--json", str(taken)])
    out, err = capsys.readouterr()
    assert status == 3 and "sigmoid on numpy in float16" in out
    assert "directory" in cannot_write_line(err.splitlines(), "--json", taken)
    report = _quick_report(tmp_path)
    capsys.readouterr()
    assert cli.main(["diff", str(report), str(report), "--markdown", str(taken)]) == 3
    out, err = capsys.readouterr()
    assert "regressions: 0" in out
    assert "directory" in cannot_write_line(err.splitlines(), "--markdown", taken)


# --- Ctrl-C --------------------------------------------------------------------------------


try:
    import psutil
except ImportError:
    psutil = None


def _proc_stat(pid):
    """(state, parent pid) from /proc/<pid>/stat, or None once the process is gone."""
    try:
        data = pathlib.Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 1:].split()  # the command, in parentheses, may hold spaces
    return fields[0].decode(), int(fields[1])


def descendants(pid):
    """Every process below ``pid``: psutil when installed, else the parent pids in /proc."""
    if psutil is not None:
        try:
            return {child.pid for child in psutil.Process(pid).children(recursive=True)}
        except psutil.NoSuchProcess:
            return set()
    parents = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        status = _proc_stat(entry)
        if status:
            parents[int(entry)] = status[1]
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def running(pid):
    """Whether ``pid`` still runs (a zombie has ended: only its parent has not read its status)."""
    if psutil is not None:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False
    status = _proc_stat(pid)
    return status is not None and status[0] != "Z"


@pytest.mark.skipif(os.name != "posix" or (psutil is None and not os.path.isdir("/proc")),
                    reason="needs POSIX signals, and psutil or /proc to see the workers")
def test_ctrl_c_is_one_line_status_130_and_no_worker_left(tmp_path):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(FAKES), os.environ.get("PYTHONPATH", "")]))
    # the hanging backend never answers softplus: without the interrupt this run takes a minute
    command = [sys.executable, "-m", "refact.conformance.cli", "conform",
               "--backend", "refact_test_backends:HangingBackend", "--function", "softplus",
               "--format", "float64", "--check", "accuracy", "--cases", "quick", "--timeout", "60",
               "--json", str(tmp_path / "r.json")]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        started = time.monotonic()
        workers = set()
        # a pool worker and the backend's own worker under it; at least a second in any case
        while time.monotonic() - started < 10 and (len(workers) < 2 or time.monotonic() - started < 1):
            time.sleep(0.1)
            workers |= descendants(process.pid)
        process.send_signal(signal.SIGINT)
        interrupted = time.monotonic()
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130
    assert err.decode() == "refact: interrupted\n" and out.decode() == ""
    assert time.monotonic() - interrupted < 10
    assert len(workers) >= 2
    deadline = time.monotonic() + 5
    while any(running(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers if running(pid)]
    assert not (tmp_path / "r.json").exists()
