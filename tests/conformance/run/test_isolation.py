"""isolation: the Worker answers jobs in a child process; a backend that raises is an
error answer and the worker lives on; a hang hits the time limit and a crash (os._exit,
a real segfault) is a JobError, and in both cases the next job gets a fresh process;
"task" and "info" jobs; the environment a backend asks for; close() leaves no child behind."""

import importlib
import multiprocessing
import os
import pathlib
import re

import pytest

from refact.conformance.run.isolation import JobError, Worker
from refact.conformance.truth.oracle import truth_many

FAKES = pathlib.Path(__file__).parent.parent / "fakes"
BACKENDS = "refact_test_backends"
FAKE_TASKS = "refact_isolation_fakes"
ALL_FORMATS = ["float64", "float32", "float16", "bfloat16"]


def _call(function, values, fmt="float64", **options):
    return {"op": "call", "function": function, "format": fmt, "arguments": [("array", values)],
            "options": options}


def _pid_job(fakes):
    return {"op": "task", "task": fakes.process_id, "args": (), "format": None}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The fakes importable here and in the spawned workers (they inherit sys.path and
    the environment at their start), and a private oracle cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.syspath_prepend(str(FAKES))
        patch.setenv("REFACT_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        for variable in ("REFACT_TEST_CACHE_GIVEN", "REFACT_TEST_PRESET"):
            patch.delenv(variable, raising=False)
        yield importlib.import_module(FAKE_TASKS)


@pytest.fixture(scope="module")
def refusing(environment):
    """One worker for the tests that leave it alive: the oracle backend, raising on NaN."""
    with Worker(f"{BACKENDS}:RefusingBackend", timeout=30) as worker:
        yield worker


@pytest.fixture
def fakes(environment):
    return environment


# --- answers ------------------------------------------------------------------------------


def test_a_call_is_answered_with_values_and_format(refusing):
    values, fmt = refusing.run(_call("sigmoid", [0.0, 2.0, -1.5]))
    assert fmt == "float64"
    assert values == [t.rounded for t in truth_many("sigmoid", [(0.0,), (2.0,), (-1.5,)], "float64")]
    assert values[0] == 0.5


def test_each_format_reaches_the_backend(refusing):
    for fmt in ALL_FORMATS:
        values, result_format = refusing.run(_call("sigmoid", [1.0], fmt))
        assert result_format == fmt and values == [truth_many("sigmoid", [(1.0,)], fmt)[0].rounded]
    assert refusing.run(_call("sigmoid", [1.0], "float16"))[0] == [0.73095703125]


def test_a_grad_job_takes_its_cotangent(refusing):
    job = {"op": "grad", "function": "sigmoid", "format": "float64", "arguments": [("array", [0.0, 3.0])],
           "cotangent": [1.0, 1.0], "options": {}}
    values, fmt = refusing.run(job)
    assert fmt == "float64" and values[0] == 0.25
    assert values[1] == pytest.approx(0.045176659730912, rel=1e-14)  # sigma(3) sigma(-3)


def test_rows_and_class_indices(refusing):
    job = {"op": "call", "function": "cross_entropy", "format": "float64",
           "arguments": [("array", [[1.0, 2.0], [0.0, 0.0]]), ("index", [1, 0])], "options": {}}
    values, _ = refusing.run(job)
    assert values == [t.rounded for t in truth_many("cross_entropy", [((1.0, 2.0), 1), ((0.0, 0.0), 0)],
                                                    "float64")]
    assert values[1] == 0.6931471805599453  # log 2


def test_a_backend_that_raises_is_an_error_and_the_worker_lives_on(refusing, fakes):
    before = refusing.run(_pid_job(fakes))[0]
    with pytest.raises(JobError) as caught:
        refusing.run(_call("sigmoid", [0.0, float("nan")]))
    assert caught.value.raised
    assert re.fullmatch(r"ValueError: NaN is not a valid input \(refact_test_backends\.py:\d+\)",
                        str(caught.value))
    assert refusing.run(_call("sigmoid", [0.0]))[0] == [0.5]
    assert refusing.run(_pid_job(fakes))[0] == before  # the same process answered


def test_a_batch_answers_each_job_and_keeps_the_errors(refusing):
    answers, none = refusing.run({"op": "many", "jobs": [
        _call("sigmoid", [0.0]), _call("sigmoid", [float("nan")]), _call("logit", [0.5])]})
    assert none is None
    assert [status for status, _ in answers] == ["ok", "error", "ok"]
    assert answers[0][1] == ([0.5], "float64") and answers[2][1] == ([0.0], "float64")
    assert answers[1][1].startswith("ValueError: NaN is not a valid input")


@pytest.mark.parametrize("job, message", [
    ({"op": "bogus", "function": "sigmoid", "format": "float64", "arguments": []},
     r"ValueError: unknown op 'bogus' \(isolation\.py:\d+\)"),
    ({"op": "call", "function": "sigmoid", "format": "float64", "arguments": [("weird", [1.0])]},
     r"ValueError: unknown argument kind 'weird' \(isolation\.py:\d+\)"),
    (_call("sigmoid", [1.0], beta=2.0), r"Unsupported: .*\bbeta\b.* \(base\.py:\d+\)"),
])
def test_malformed_jobs_are_raised_errors(refusing, job, message):
    with pytest.raises(JobError) as caught:
        refusing.run(job)
    assert caught.value.raised and re.fullmatch(message, str(caught.value)), str(caught.value)


def test_a_task_runs_in_the_worker_with_its_backend(refusing, fakes):
    job = {"op": "task", "task": fakes.describe_worker, "args": (2, 3), "kwargs": {"scale": 10},
           "format": "float16"}
    result, fmt = refusing.run(job)
    assert fmt == "float16"
    assert result["backend"] == "RefusingBackend" and result["name"] == "refusing"
    assert result["value"] == 50 and result["pid"] != os.getpid()
    assert result["environment"] == {}  # this backend asks for no variables
    assert result["warnings"] == "ignore"  # frameworks' warnings are silenced in the worker


def test_the_worker_sets_the_environment_its_backend_asks_for(fakes, monkeypatch):
    # the cache directory is the oracle cache's; a variable the user set is left alone
    monkeypatch.setenv("REFACT_TEST_PRESET", "set by the user")
    with Worker(f"{FAKE_TASKS}:EnvironmentBackend", timeout=20) as worker:
        result, _ = worker.run({"op": "task", "task": fakes.describe_worker, "args": (0, 0), "format": None})
    assert result["environment"] == {"REFACT_TEST_CACHE_GIVEN": os.environ["REFACT_CACHE_DIR"],
                                     "REFACT_TEST_PRESET": "set by the user"}
    assert "REFACT_TEST_CACHE_GIVEN" not in os.environ  # set in the worker only
    monkeypatch.setenv("REFACT_CACHE_DIR", "")  # no cache: the backend is told None
    monkeypatch.delenv("REFACT_TEST_PRESET")
    with Worker(f"{FAKE_TASKS}:EnvironmentBackend", timeout=20) as worker:
        result, _ = worker.run({"op": "task", "task": fakes.describe_worker, "args": (0, 0), "format": None})
    assert result["environment"] == {"REFACT_TEST_CACHE_GIVEN": "None",
                                     "REFACT_TEST_PRESET": "set by the backend"}


def test_a_failing_task_is_a_raised_error(refusing, fakes):
    with pytest.raises(JobError, match=r"^RuntimeError: the task failed \(refact_isolation_fakes\.py:\d+\)$") \
            as caught:
        refusing.run({"op": "task", "task": fakes.failing_task, "args": (), "format": None})
    assert caught.value.raised


def test_info_describes_the_backend(refusing):
    info, none = refusing.run({"op": "info"})
    assert none is None
    assert info["name"] == "refusing" and info["device"] == "cpu" and info["available"] is True
    assert info["formats_of"]["sigmoid"] == ALL_FORMATS
    assert set(info["formats_of"]) == set(info["functions"]) and "softmax" in info["functions"]
    assert info["version"] is None or isinstance(info["version"], str)


# --- hangs and crashes --------------------------------------------------------------------


def test_a_hang_hits_the_time_limit_and_the_worker_is_replaced(fakes):
    with Worker(f"{BACKENDS}:HangingBackend", timeout=1) as worker:
        first = worker.run(_pid_job(fakes))[0]
        process = worker._process  # the child as multiprocessing knows it
        with pytest.raises(JobError) as caught:
            worker.run(_call("softplus", [1.0]))
        assert str(caught.value) == (f"backend '{BACKENDS}:HangingBackend' did not answer within 1 s "
                                     "while computing softplus")
        assert not caught.value.raised
        assert process.exitcode == -9 and not _alive(first)  # killed, and reaped
        assert worker.run(_call("sigmoid", [0.0]))[0] == [0.5]  # the next job is served ...
        assert worker.run(_pid_job(fakes))[0] != first  # ... by a fresh process


def test_a_crash_is_recorded_and_the_next_job_is_served(fakes):
    name = f"{BACKENDS}:CrashingBackend"
    with Worker(name, timeout=20) as worker:
        first = worker.run(_pid_job(fakes))[0]
        process = worker._process
        with pytest.raises(JobError) as caught:
            worker.run(_call("sigmoid", [0.0]))
        assert str(caught.value).startswith(f"backend '{name}' crashed while computing sigmoid (exit code ")
        assert not caught.value.raised
        assert process.exitcode == 139  # os._exit(139)
        assert worker.run(_call("logit", [0.5]))[0] == [0.0]
        assert worker.run(_pid_job(fakes))[0] != first


def test_a_crash_in_the_middle_of_a_batch(fakes):
    with Worker(f"{BACKENDS}:CrashingBackend", timeout=20) as worker:
        with pytest.raises(JobError, match="crashed while computing sigmoid"):
            worker.run({"op": "many", "jobs": [_call("logit", [0.5]), _call("sigmoid", [0.0]),
                                               _call("logit", [0.5])]})
        answers, _ = worker.run({"op": "many", "jobs": [_call("logit", [0.5])]})
        assert answers == [("ok", ([0.0], "float64"))]


def test_a_segfault_is_a_crash(fakes):
    name = f"{FAKE_TASKS}:SegfaultingBackend"
    with Worker(name, timeout=20) as worker:
        worker.run(_call("logit", [0.5]))
        process = worker._process
        with pytest.raises(JobError) as caught:
            worker.run(_call("sigmoid", [0.0]))
        assert str(caught.value).startswith(f"backend '{name}' crashed while computing sigmoid")
        assert process.exitcode == -11  # SIGSEGV
        assert worker.run(_call("logit", [0.25]))[0] == [truth_many("logit", [(0.25,)], "float64")[0].rounded]


def test_a_crash_reports_its_exit_code(fakes):
    """The pipe closes before the process exits: the exit code is waited for, not read early."""
    name = f"{FAKE_TASKS}:LingeringCrashBackend"
    with Worker(name, timeout=20) as worker:
        with pytest.raises(JobError) as caught:
            worker.run(_call("sigmoid", [0.0]))
    assert str(caught.value) == f"backend '{name}' crashed while computing sigmoid (exit code 139)"


def test_a_backend_that_cannot_be_constructed(fakes):
    name = "no_such_module_for_refact:Backend"
    children = multiprocessing.active_children()
    worker = Worker(name, timeout=5)
    with pytest.raises(JobError) as caught:
        worker.run(_call("sigmoid", [0.0]))
    assert str(caught.value) == (f"cannot construct backend {name!r}: "
                                 "No module named 'no_such_module_for_refact'")
    assert not caught.value.raised
    assert worker._process is None and set(multiprocessing.active_children()) == set(children)


def test_a_backend_that_never_starts_hits_the_startup_limit(fakes):
    name = f"{FAKE_TASKS}:SlowStartingBackend"
    children = multiprocessing.active_children()
    worker = Worker(name, timeout=1, startup_timeout=1)
    with pytest.raises(JobError, match=re.escape(f"backend '{name}' did not answer within 1 s while starting")):
        worker.run(_call("sigmoid", [0.0]))
    assert worker._process is None and set(multiprocessing.active_children()) == set(children)  # killed


# --- close() ---------------------------------------------------------------------------------


def test_close_leaves_no_child_process(fakes):
    worker = Worker(f"{BACKENDS}:OracleBackend", timeout=20)
    worker.close()  # never started: nothing to do
    pid = worker.run(_pid_job(fakes))[0]
    process = worker._process
    assert _alive(pid) and process in multiprocessing.active_children()
    worker.close()
    assert process.exitcode == 0  # it left on the sentinel by itself, it was not killed
    assert not _alive(pid) and process not in multiprocessing.active_children()
    worker.close()  # twice is fine
    # a closed worker starts a fresh process when asked again, and the context manager closes it
    with worker:
        again = worker.run(_pid_job(fakes))[0]
        process = worker._process
    assert again != pid and process.exitcode == 0 and not _alive(again)


# --- a hostile backend's cost is bounded, its output kept out of the terminal ----------------


def test_what_a_backend_prints_is_kept_bounded_not_shown(fakes, capfd):
    with Worker(f"{FAKE_TASKS}:PrintingBackend", timeout=30) as worker:
        values, fmt = worker.run(_call("sigmoid", [0.0]))
        printed = worker.take_output()
    assert values == [0.5] and fmt == "float64"
    assert printed.startswith("\x1b[31mred\x1b[0m python says hello xxx")
    assert printed.endswith("more bytes]") and len(printed) < 2100  # 2000 kept, the rest counted
    assert worker.take_output() == ""
    out, err = capfd.readouterr()
    assert "python says hello" not in out + err and "C-level" not in out + err


def test_a_memory_error_is_not_retried_point_by_point(fakes):
    with Worker(f"{FAKE_TASKS}:MemoryHungryBackend", timeout=30) as worker:
        with pytest.raises(JobError, match="MemoryError: cannot allocate 1 TiB") as caught:
            worker.run(_call("sigmoid", [0.0]))
        assert not caught.value.raised  # a refusal of one input would be raised=True
        answers, _ = worker.run({"op": "many", "jobs": [_call("sigmoid", [0.0]), _call("logit", [0.5])]})
    assert [status for status, _ in answers] == ["fatal", "ok"]


def test_a_hanging_backend_costs_a_few_time_limits_not_one_per_call(fakes):
    """One hang per function, three per backend: then every job fails at once."""
    import time

    with Worker(f"{FAKE_TASKS}:AlwaysHangingBackend", timeout=1) as worker:
        start = time.monotonic()
        messages = []
        for function in ["sigmoid", "sigmoid", "logit", "softplus", "ndtr", "probit"] * 5:
            with pytest.raises(JobError) as caught:
                worker.run(_call(function, [0.5]))
            messages.append(str(caught.value))
        elapsed = time.monotonic() - start
    assert sum("did not answer within 1 s" in m for m in messages) == 3
    assert "not asked for sigmoid: it hung on sigmoid already" in messages[1]
    assert all("not asked: it hung 3 times already" in m for m in messages[4:])
    assert elapsed < 3 * 1 + 10  # three limits and three restarts, not thirty


def test_construction_honours_the_time_limit(fakes):
    import time

    start = time.monotonic()
    with pytest.raises(JobError, match="did not answer within 2 s while starting"):
        Worker(f"{FAKE_TASKS}:SlowStartingBackend", timeout=2).run(_call("sigmoid", [0.0]))
    assert time.monotonic() - start < 10


def test_a_worker_ends_when_its_parent_is_killed(fakes, tmp_path):
    """SIGKILL of the process that started a worker (refact itself) leaves no worker."""
    import signal
    import subprocess
    import sys
    import textwrap
    import time

    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        import time
        sys.path.insert(0, {str(FAKES)!r})
        from refact.conformance.run.isolation import Worker

        if __name__ == "__main__":  # the spawned worker imports this file again
            worker = Worker("{FAKE_TASKS}:AlwaysHangingBackend", timeout=600)
            worker._start()
            print(worker._process.pid, flush=True)
            worker._connection.send({{"op": "call", "function": "sigmoid", "format": "float64",
                                      "arguments": [("array", [0.0])], "options": {{}}}})
            time.sleep(600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    assert _running(child)
    time.sleep(0.5)  # the child is now stuck in the backend's call
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _running(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(child)


def _running(pid):
    """Alive and not a zombie (an orphan's exit is reaped by whoever adopts it, maybe late)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


def _sigint_blocked(pid):
    """Whether SIGINT is in the blocked mask of process ``pid`` (from /proc)."""
    import signal

    with open(f"/proc/{pid}/status") as status:
        mask = next(int(line.split()[1], 16) for line in status if line.startswith("SigBlk:"))
    return bool(mask >> (signal.SIGINT - 1) & 1)


@pytest.mark.skipif(not os.path.isdir("/proc") or not hasattr(__import__("signal"), "pthread_sigmask"),
                    reason="needs POSIX signal masks and /proc")
def test_a_ctrl_c_while_a_child_starts_is_kept_and_the_child_never_sees_one():
    # SIGINT used to be ignored while a child started, so a Ctrl-C in that window was
    # lost and the run went on; now it waits, blocked, and the child keeps it blocked
    import signal
    import subprocess
    import sys
    import time

    from refact.conformance.run.isolation import children_ignore_sigint

    with pytest.raises(KeyboardInterrupt):
        with children_ignore_sigint():
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
            os.kill(os.getpid(), signal.SIGINT)  # the Ctrl-C, mid-start
    try:
        assert _sigint_blocked(child.pid)
        os.kill(child.pid, signal.SIGINT)
        time.sleep(0.3)
        assert child.poll() is None  # still sleeping: the Ctrl-C never reached it
        assert not _sigint_blocked(os.getpid())  # this process is interruptible again
    finally:
        child.kill()
        child.wait()
