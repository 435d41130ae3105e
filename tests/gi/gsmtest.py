# gsmtest.py: shared helpers of the Python GI tests
#
# Import this before anything touches Gsm: it gives the process its own
# runtime directory (the session manager reads the environment once, when
# it is created) and loads the typelib of the uninstalled build, with the
# override of the source tree.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import atexit
import os
import shutil
import sys
import tempfile
import unittest

RUNTIME_DIR = tempfile.mkdtemp(prefix='gsm-gi-py-')
os.environ['GSM_RUNTIME_DIR'] = RUNTIME_DIR
os.environ.setdefault('GSM_DURABLE', '0')
atexit.register(shutil.rmtree, RUNTIME_DIR, ignore_errors=True)

import gi  # noqa: E402
import gi.overrides  # noqa: E402

# The override of the source tree (gi/overrides/Gsm.py), before any
# installed one.
OVERRIDES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'gi', 'overrides')
gi.overrides.__path__.insert(0, OVERRIDES_DIR)
# The same for a Python program run with python3 -c.
USE_OVERRIDES = 'import gi.overrides; gi.overrides.__path__.insert(0, %r)\n' % OVERRIDES_DIR

gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')
gi.require_version('Gsm', '1.0')
from gi.repository import GLib, Gio, Gsm  # noqa: E402,F401

# Bounds for waiting on other processes and on the main loop; generous,
# never asserted as timings.
WAIT_SECONDS = 15


class Timeout(AssertionError):
    pass


def run_until(predicate, what, seconds=WAIT_SECONDS):
    """Iterates the default main context until predicate() is true."""
    ctx = GLib.MainContext.default()
    expired = []

    def on_timeout():
        expired.append(True)
        return GLib.SOURCE_REMOVE

    source = GLib.timeout_add_seconds(seconds, on_timeout)
    try:
        while not predicate():
            if expired:
                raise Timeout('timed out after %ds waiting for %s' % (seconds, what))
            ctx.iteration(True)
    finally:
        if not expired:
            GLib.source_remove(source)


def call_async(obj, name, *args):
    """Calls obj.name(*args) in callback form and runs a GLib.MainLoop until
    the callback; returns the result of the matching _finish() (raising its
    GLib.Error). The user_data must arrive untouched."""
    outcome = {}
    token = object()
    loop = GLib.MainLoop()

    def callback(source, result, user_data):
        outcome['user_data'] = user_data
        outcome['source'] = source
        try:
            outcome['value'] = finish(result)
        except GLib.Error as e:
            outcome['error'] = e
        loop.quit()

    def on_timeout():
        outcome['timeout'] = True
        loop.quit()
        return GLib.SOURCE_REMOVE

    finish = getattr(obj, name + '_finish')
    getattr(obj, name)(*args, callback, token)
    timeout = GLib.timeout_add_seconds(WAIT_SECONDS, on_timeout)
    loop.run()
    if 'timeout' in outcome:
        raise Timeout('timed out after %ds waiting for %s to complete' % (WAIT_SECONDS, name))
    GLib.source_remove(timeout)
    assert outcome['user_data'] is token, 'user_data was not passed through'
    assert outcome['source'] is obj, 'the source object is not the callee'
    if 'error' in outcome:
        raise outcome['error']
    return outcome['value']


class LineReader:
    """Reads lines of a subprocess's stdout without blocking the main loop."""

    def __init__(self, proc):
        self.stream = Gio.DataInputStream.new(proc.get_stdout_pipe())

    def read_line(self, what, seconds=WAIT_SECONDS):
        box = {}

        def on_line(s, res):
            try:
                box['line'] = s.read_line_finish_utf8(res)[0]
            except GLib.Error as e:
                box['line'] = 'ERROR ' + e.message

        self.stream.read_line_async(GLib.PRIORITY_DEFAULT, None, on_line)
        run_until(lambda: 'line' in box, what, seconds)
        return box['line']


def wait_exit(proc, what, seconds=WAIT_SECONDS):
    """Waits for proc to exit; returns its exit status."""
    done = []
    proc.wait_async(None, lambda p, res: done.append(p.wait_finish(res)))
    run_until(lambda: done, what, seconds)
    return proc.get_exit_status() if proc.get_if_exited() else -proc.get_term_sig()


class Worker:
    """A C session process ($GSM_TEST_WORKER register VM) in our runtime
    directory."""

    def __init__(self, vm_id, zone='us-central1-a'):
        self.proc = Gio.Subprocess.new(
            [os.environ['GSM_TEST_WORKER'], 'register', vm_id, zone],
            Gio.SubprocessFlags.STDOUT_PIPE | Gio.SubprocessFlags.STDIN_PIPE)
        line = LineReader(self.proc).read_line('the worker to register %s' % vm_id)
        words = (line or '').split()
        if len(words) != 3 or words[0] != 'READY':
            self.kill()
            raise AssertionError('worker failed: %r' % line)
        self.session_id = words[1]
        self.pid = int(words[2])

    def kill(self):
        self.proc.force_exit()
        self.proc.wait(None)


class TapResult(unittest.TestResult):
    """Reports each test as a TAP line as soon as it finishes."""

    def __init__(self, stream):
        super().__init__(stream, False, 0)
        self.n = 0

    def _line(self, ok, test, extra=''):
        self.n += 1
        print('%s %d - %s%s' % ('ok' if ok else 'not ok', self.n, test.id(), extra), flush=True)

    def _diag(self, text):
        for line in text.rstrip().splitlines():
            print('# ' + line, flush=True)

    def addSuccess(self, test):
        super().addSuccess(test)
        self._line(True, test)

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._line(False, test)
        self._diag(self.failures[-1][1])

    def addError(self, test, err):
        super().addError(test, err)
        self._line(False, test)
        self._diag(self.errors[-1][1])

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._line(True, test, ' # SKIP ' + reason)


def main(*test_cases):
    """Runs the test cases in the order given, reporting TAP."""
    loader = unittest.TestLoader()
    suite = unittest.TestSuite(loader.loadTestsFromTestCase(tc) for tc in test_cases)
    print('1..%d' % suite.countTestCases(), flush=True)
    result = TapResult(sys.stdout)
    suite.run(result)
    sys.exit(0 if result.wasSuccessful() else 1)
