"""Backend calls in a worker process, so a crash or a hang is a recorded error, not a dead run.

One worker process serves one backend: it imports the framework once and then answers
jobs sent over a pipe. The parent waits for each answer with a time limit; a worker that
dies (segfault, abort, os._exit) or does not answer in time is killed, the job is
recorded as an error, and a fresh worker is started for the next job.

A job names its arguments by kind, because a backend builds each kind differently:
``("array", nested floats)`` becomes a native array of the job's format,
``("index", nested ints)`` an integer array of class indices, ``("scalar", float)``
stays a Python number (e.g. a temperature).
"""

import contextlib
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import threading
import time
import traceback

from refact.backends import get_backend, worker_environment
from refact.conformance.truth import store

#: How refact starts its processes: spawn, not fork, since frameworks keep threads and
#: device state that a forked child inherits broken.
SPAWN = multiprocessing.get_context("spawn")
#: Seconds to wait for a child whose pipe closed to exit, so its exit code can be read.
REAP_SECONDS = 5.0
#: How often a worker checks that the process that started it is still there.
_PARENT_WATCH_SECONDS = 0.5
#: Characters of a backend's own printing kept per answer (the rest is counted).
_OUTPUT_LIMIT = 2000
#: Calls of one function that may hang before the function is not asked again, and
#: hangs of a backend before none of its functions is.
HANGS_PER_FUNCTION = 1
HANGS_PER_BACKEND = 3


class JobError(Exception):
    """The backend raised, crashed or timed out on a job; the message says which.
    ``raised`` is true when the backend raised an exception (it is alive and may answer
    other inputs), false for a crash or a hang."""

    def __init__(self, message, raised=False):
        super().__init__(message)
        self.raised = raised


def _build_arguments(backend, fmt, arguments):
    built = []
    for kind, value in arguments:
        if kind == "array":
            built.append(backend.asarray(value, fmt))
        elif kind == "index":
            built.append(backend.asindex(value))
        elif kind == "scalar":
            built.append(value)
        else:
            raise ValueError(f"unknown argument kind {kind!r}")
    return built


def describe(backend):
    """What the parent needs to plan the checks: the backend's info as a dict, plus the
    formats of each function (some functions run in fewer formats than the backend)."""
    info = backend.info().to_dict()
    # plain str: a framework's version object (torch's TorchVersion) would make the
    # parent import the framework just to unpickle it
    info["version"] = None if info["version"] is None else str(info["version"])
    info["formats_of"] = {name: list(backend.formats_of(name)) for name in info["functions"]}
    return info


def execute(backend, job):
    """Run one job in this process; return ``(values, format_of_result)``.

    ``job`` is a dict: ``op`` ("info", "call", "grad" or "task"), ``function``,
    ``format``, ``arguments`` (list of (kind, value)), ``options`` (keywords for the call)
    and, for "grad", ``cotangent`` (nested floats shaped like the function's output).
    """
    if job["op"] == "info":
        return describe(backend), None
    if job["op"] == "task":
        # a caller's own function run here with this process's backend (a sweep of every
        # value of a 16-bit format): the caller names it, so this module imports none of them
        return job["task"](*job["args"], backend=backend, **job.get("kwargs", {})), job["format"]
    arguments = _build_arguments(backend, job["format"], job["arguments"])
    if job["op"] == "call":
        result = backend.call(job["function"], *arguments, **job.get("options", {}))
    elif job["op"] == "grad":
        cotangent = backend.asarray(job["cotangent"], job["format"])
        result = backend.grad(job["function"], arguments, cotangent, **job.get("options", {}))
    else:
        raise ValueError(f"unknown op {job['op']!r}")
    return backend.tolist(result)


def _attempt(backend, job):
    try:
        return "ok", execute(backend, job)
    except MemoryError as error:
        # not an input the framework refuses: asking again point by point would only
        # exhaust the memory again
        return "fatal", f"MemoryError: {error}"
    except Exception as error:
        return "error", _describe(error)


def _describe(error):
    last = traceback.extract_tb(error.__traceback__)[-1:]
    where = f" ({last[0].filename.rsplit('/', 1)[-1]}:{last[0].lineno})" if last else ""
    return f"{type(error).__name__}: {error}{where}"


#: Log levels every worker sets before any framework is imported, where the user has
#: not: a framework's C++ logging goes to the worker's stderr, which is captured into the
#: report. Only messages change, never kernels: so no TF_ENABLE_ONEDNN_OPTS (its 0
#: switches TensorFlow's oneDNN kernels off; TensorFlow 2.21's notice saying so is logged
#: by absl before any level applies, measured), and no JAX_PLATFORMS (it picks the device).
QUIET_LOGS = {
    "TF_CPP_MIN_LOG_LEVEL": "3",   # TensorFlow and XLA (jax): fatal messages only
    "GRPC_VERBOSITY": "ERROR",     # gRPC, which TensorFlow and jax link
    "GLOG_minloglevel": "2",       # glog's INFO and WARNING lines
}


def _prepare_environment(backend_name):
    """Set the variables the backend asks for (its persistent compilation cache next to
    the oracle's cache, say), then :data:`QUIET_LOGS`, leaving alone every one the user
    has set."""
    path = store.cache_path()
    wanted = worker_environment(backend_name, None if path is None else os.path.dirname(path))
    for variable, value in {**QUIET_LOGS, **wanted}.items():
        os.environ.setdefault(variable, value)


def exit_with_parent(interval=_PARENT_WATCH_SECONDS):
    """End this process (at once, no cleanup) when the process that started it is gone,
    even while the main thread is stuck in a backend: after a SIGKILL of ``refact`` no
    worker is left running. A daemon thread watches the parent's pid."""
    # the pid recorded when this process was spawned: the parent may already be gone by
    # the time this runs (a worker importing its framework when refact was killed)
    spawner = multiprocessing.parent_process()
    parent = spawner.pid if spawner is not None else os.getppid()

    def watch():
        while True:
            if os.getppid() != parent:
                os._exit(1)
            time.sleep(interval)

    threading.Thread(target=watch, name="refact-parent-watch", daemon=True).start()


_LOG_PREFIX = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ ", re.MULTILINE)


@contextlib.contextmanager
def children_ignore_sigint():
    """Processes started inside this block never receive SIGINT: a Ctrl-C at the
    terminal reaches the whole process group, and a child still importing would print
    its own traceback. ``refact`` stops its children itself, and they end with it anyway
    (:func:`exit_with_parent`).

    SIGINT is blocked, not ignored, while they start: the signal mask survives fork and
    exec and Python never unblocks it, so the children keep it blocked for life, while
    a Ctrl-C that arrives meanwhile stays pending here and interrupts this process when
    the block ends. (Ignoring it, the former way, lost a Ctrl-C that came while a
    child was being started: the run went on.) Where there is no signal mask to set
    (Windows), SIGINT is ignored during the block instead."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may change a signal's handler
        return
    if hasattr(signal, "pthread_sigmask"):
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            yield
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _flush_standard_streams():
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass


class _Captured:
    """This process's stdout and stderr (file descriptors 1 and 2, so a framework's C++
    logging too) sent to an unlinked temporary file instead of the user's terminal;
    :meth:`take` returns what was written since the last call, at most ``limit``
    characters of it, and empties the file (a backend printing without end must not
    fill the disk)."""

    def __init__(self, limit=_OUTPUT_LIMIT):
        self.limit = limit
        self.file = tempfile.TemporaryFile()
        _flush_standard_streams()
        for fd in (1, 2):
            os.dup2(self.file.fileno(), fd)  # one shared offset: the end of what was written

    def take(self):
        _flush_standard_streams()
        fd = self.file.fileno()
        size = os.lseek(fd, 0, os.SEEK_CUR)
        if size <= 0:
            return ""
        data = os.pread(fd, min(size, self.limit), 0)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        # absl/glog lines start with a timestamp and a thread id: without them what a
        # framework logs is the same from run to run, and reports can be compared
        text = _LOG_PREFIX.sub(r"\1 ", data.decode("utf-8", "replace"))
        return text if size <= self.limit else f"{text} [... {size - self.limit} more bytes]"


def _serve(connection, backend_name, device):
    import warnings

    exit_with_parent()
    captured = _Captured()
    # Frameworks warn about overflow and odd shapes on exactly the inputs a conformance
    # run is made of; the measurements report those cases, the warnings only add noise.
    warnings.simplefilter("ignore")
    try:
        _prepare_environment(backend_name)
        backend = get_backend(backend_name, device=device)
    except Exception as error:  # reported to the parent, which records every job as an error
        connection.send(("error", f"cannot construct backend {backend_name!r}: {error}",
                         captured.take()))
        return
    connection.send(("ready", None, captured.take()))
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        if job is None:
            # Nothing is left to save: skip the frameworks' exit handlers, which take
            # seconds (torch, tensorflow) while the parent waits.
            connection.close()
            os._exit(0)
        if job["op"] == "many":
            # several calls sent at once, each answered as soon as it is done: one round
            # trip for a batch, and still one time limit per call
            for one in job["jobs"]:
                connection.send((*_attempt(backend, one), captured.take()))
        else:
            connection.send((*_attempt(backend, job), captured.take()))


class Worker:
    """A child process answering jobs for one backend, restarted after a crash or hang.

    ``timeout`` bounds every answer and the backend's construction (``startup_timeout``,
    when given, the latter alone). The cost of a backend that hangs is bounded: a
    function that hung :data:`HANGS_PER_FUNCTION` times is not asked again, nor is the
    backend after :data:`HANGS_PER_BACKEND` hangs; those jobs fail at once. What the
    backend prints is kept, bounded, for :meth:`take_output`.
    """

    def __init__(self, backend_name, device="cpu", timeout=60.0, startup_timeout=None):
        self.backend_name = backend_name
        self.device = device
        self.timeout = timeout
        self.startup_timeout = timeout if startup_timeout is None else startup_timeout
        self._process = None
        self._connection = None
        self._hangs = {}
        self._output = []
        #: what the backend printed while it was constructed (its framework's import)
        self.startup_output = ""

    def take_output(self):
        """What the backend printed since the last call (bounded per answer), or ""."""
        text, self._output = "".join(self._output), []
        return text

    def _refuse_if_hung(self, function):
        hangs = sum(self._hangs.values())
        if hangs >= HANGS_PER_BACKEND:
            raise JobError(f"backend {self.backend_name!r} not asked: it hung {hangs} times already")
        if self._hangs.get(function, 0) >= HANGS_PER_FUNCTION:
            raise JobError(f"backend {self.backend_name!r} not asked for {function}: it hung "
                           f"on {function} already")

    def _start(self):
        parent, child = SPAWN.Pipe()
        process = SPAWN.Process(target=_serve, args=(child, self.backend_name, self.device), daemon=True)
        with children_ignore_sigint():
            process.start()
        child.close()
        self._process, self._connection = process, parent
        status, message = self._receive(self.startup_timeout, "starting")
        self.startup_output = self.take_output()
        if status != "ready":
            self.close()
            raise JobError(message)

    def _receive(self, timeout, doing, function=None):
        connection = self._connection
        if not connection.poll(timeout):
            self.close()
            self._hangs[function] = self._hangs.get(function, 0) + 1
            raise JobError(f"backend {self.backend_name!r} did not answer within {timeout:g} s while {doing}")
        try:
            status, payload, printed = connection.recv()
            if printed:
                self._output.append(printed)
            return status, payload
        except (EOFError, ConnectionError, OSError):
            code = None
            if self._process is not None:
                # the pipe closes before the exit status can be collected: wait for it
                self._process.join(REAP_SECONDS)
                code = self._process.exitcode
            self.close()
            what = "still running, killed" if code is None else code
            raise JobError(f"backend {self.backend_name!r} crashed while {doing} (exit code {what})") from None

    def run(self, job):
        """Return the job's ``(values, format)``, or raise JobError with the reason.

        A job ``{"op": "many", "jobs": [...]}`` sends several jobs at once and returns
        ``(answers, None)``, an answer per job: ``("ok", (values, format))`` or
        ``("error", message)`` where the backend raised, so that one input a framework
        refuses does not hide the others. A crash or a hang still raises JobError."""
        function = job.get("function", job["op"])
        for one in job["jobs"] if job["op"] == "many" else [job]:
            self._refuse_if_hung(one.get("function", function))
        if self._process is None or not self._process.is_alive():
            self._start()
        try:
            self._connection.send(job)
        except (BrokenPipeError, OSError):
            self.close()
            raise JobError(f"backend {self.backend_name!r} worker is gone") from None
        if job["op"] == "many":
            return [self._receive(self.timeout, f"computing {one.get('function', one['op'])}",
                                  one.get("function", function))
                    for one in job["jobs"]], None
        status, payload = self._receive(self.timeout, f"computing {function}", function)
        if status != "ok":
            raise JobError(payload, raised=status == "error")
        return payload

    def close(self):
        if self._process is not None:
            if self._process.is_alive():
                try:
                    self._connection.send(None)
                except OSError:
                    pass
                self._process.join(timeout=2)
            if self._process.is_alive():
                self._process.kill()
                self._process.join()
        if self._connection is not None:
            self._connection.close()
        self._process = self._connection = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
