#!/usr/bin/python3
# test_examples.py: runs the examples of introspection/examples once each
#
#   test_examples.py python        monitor_sessions.py and cleanup_vms.py
#   test_examples.py javascript    monitor-sessions.js
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import subprocess
import sys
import unittest

from gsmtest import USE_OVERRIDES, Gio, Gsm, LineReader, Worker, main, wait_exit

EXAMPLES = os.environ.get('GSM_EXAMPLES_DIR') or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', '..', 'introspection', 'examples')
PYTHON = sys.executable
USAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'docs', 'gi-usage.md')


def usage_block(language):
    """The first ```language block of docs/gi-usage.md (the README's first
    lines for Python and JavaScript users)."""
    with open(USAGE) as f:
        text = f.read()
    start = text.index('```%s\n' % language) + len(language) + 4
    return text[start:text.index('```', start)]


def run(*argv):
    return subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=30, text=True)


class MonitorMixin:
    command = None

    def test_monitor_once(self):
        m = Gsm.SessionManager.get_default()
        r = run(*self.command)
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        # This test's session and the monitor's own (marked with *).
        self.assertEqual(lines[0], 'Active sessions: 2', r.stdout)
        self.assertEqual(len(lines), 3, r.stdout)
        ours = [l for l in lines[1:] if l.startswith('  Session %s: PID %d ' % (m.props.session_id[:8], os.getpid()))]
        self.assertEqual(len(ours), 1, r.stdout)
        self.assertEqual(len([l for l in lines[1:] if l.startswith('* Session ')]), 1, r.stdout)
        self.assertEqual(r.stderr, '')

    def test_monitor_follow(self):
        Gsm.SessionManager.get_default()
        proc = Gio.Subprocess.new(list(self.command) + ['--follow', '--max-changes', '1'],
                                  Gio.SubprocessFlags.STDOUT_PIPE)
        worker = None
        try:
            out = LineReader(proc)
            header = out.read_line('the monitor to list')
            self.assertTrue(header.startswith('Active sessions: '), header)
            for _ in range(int(header.split(': ')[1])):
                out.read_line('the monitor to list')
            worker = Worker('vm-example-monitor')
            line = out.read_line('the monitor to print the new session')
            self.assertTrue(line.startswith('+ Session %s: PID %d ' % (worker.session_id[:8], worker.pid)), line)
            self.assertEqual(wait_exit(proc, 'the monitor to exit'), 0)
        finally:
            proc.force_exit()
            if worker:
                worker.kill()
        Gsm.SessionManager.get_default().cleanup_stale_sessions_sync(None)


def check_usage_output(test, r, pid):
    test.assertEqual(r.returncode, 0, r.stderr)
    test.assertEqual(r.stderr, '')
    mine = [l.split() for l in r.stdout.splitlines() if l.split()[1:2] == [str(pid)]]
    test.assertEqual(len(mine), 1, r.stdout)
    test.assertEqual(mine[0][2], 'jarvis-auto-12345')
    return r.stdout


class PythonExamples(unittest.TestCase, MonitorMixin):
    command = (PYTHON, os.path.join(EXAMPLES, 'monitor_sessions.py'))
    cleanup = os.path.join(EXAMPLES, 'cleanup_vms.py')

    def test_cleanup_deletes_and_unregisters(self):
        m = Gsm.SessionManager.get_default()
        r = run(PYTHON, self.cleanup, '--register', 'vm-example-1', '--zone', 'europe-west1-b',
                '--component', 'voice', '--delete-command', '/bin/echo deleting {vm_id} in {zone}')
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = r.stdout.splitlines()
        self.assertRegex(lines[0], r'^Registered VM vm-example-1 to session [0-9a-f]{8}$')
        self.assertEqual(lines[1:], ['deleting vm-example-1 in europe-west1-b', 'Deleted VM vm-example-1'])
        self.assertFalse([s for s in Gsm.SessionList.new(None, None) if s.props.vm_id == 'vm-example-1'])

    def test_cleanup_keeps_the_vm_when_delete_fails(self):
        m = Gsm.SessionManager.get_default()
        r = run(PYTHON, self.cleanup, '--register', 'vm-example-2', '--delete-command', 'false')
        self.assertEqual(r.returncode, 1, r.stdout)
        self.assertEqual(r.stdout.splitlines()[1:], ['Could not delete VM vm-example-2 (exit status 1)'])
        # The session is gone, the VM is not: its entry stays, found dead, for the reaper.
        lst = Gsm.SessionList.new(None, None)
        (left,) = [s for s in lst if s.props.vm_id == 'vm-example-2']
        self.assertEqual(lst.get_liveness(left), Gsm.Liveness.DEAD)
        self.assertEqual(left.props.zone, 'us-central1-a')
        # Listing the active sessions records it as stale, as in the seed.
        self.assertIsNone(m.get_all_active_sessions_sync(None).get(left.props.session_id))
        recorded = Gsm.SessionList.new(None, None).lookup(left.props.session_id)
        self.assertEqual(recorded.props.status, 'stale')
        self.assertGreater(recorded.props.stale_since, 0)

    def test_usage_in_the_readme(self):
        code = usage_block('python')
        self.assertLessEqual(len(code.strip().splitlines()), 10)
        proc = subprocess.Popen([PYTHON, '-c', USE_OVERRIDES + code], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate(timeout=30)
        stdout = check_usage_output(self, subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid)
        self.assertIn("'vm_id': 'jarvis-auto-12345'", stdout)
        self.assertIn("'vms_registered': 1", stdout)

    def test_cleanup_without_vm(self):
        r = run(PYTHON, self.cleanup, '--delete-command', 'false')
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.splitlines(), ['No VM registered to this session'])


class JavaScriptExamples(unittest.TestCase, MonitorMixin):
    command = ('gjs', '-m', os.path.join(EXAMPLES, 'monitor-sessions.js'))

    def test_usage_in_the_readme(self):
        code = usage_block('js')
        self.assertLessEqual(len(code.strip().splitlines()), 10)
        path = os.path.join(os.environ['GSM_RUNTIME_DIR'], 'usage.js')
        with open(path, 'w') as f:
            f.write(code)
        try:
            proc = subprocess.Popen(['gjs', '-m', path], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
            out, err = proc.communicate(timeout=30)
        finally:
            os.unlink(path)
        check_usage_output(self, subprocess.CompletedProcess(proc.args, proc.returncode, out, err), proc.pid)


if __name__ == '__main__':
    which = sys.argv[1] if len(sys.argv) > 1 else 'python'
    main({'python': PythonExamples, 'javascript': JavaScriptExamples}[which])
