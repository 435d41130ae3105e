#!/usr/bin/python3
# test_cross_language.py: a Python and a GJS process share the registry
#
# Each registers a VM and sees the other's session, and each receives
# ::sessions-changed for the other's change without restarting.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import unittest

from gsmtest import GLib, Gio, Gsm, LineReader, main, run_until, wait_exit

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'cross-peer.js')


class CrossLanguage(unittest.TestCase):
    def test_python_and_gjs_see_each_other(self):
        m = Gsm.SessionManager.get_default()
        events = []
        for name in ('sessions-changed', 'session-added', 'session-removed'):
            m.connect(name, lambda _m, *a, name=name: events.append((name,) + a))

        def seen(name, sid=None):
            return [e for e in events if e[0] == name and (sid is None or e[1].props.session_id == sid)]

        proc = Gio.Subprocess.new(['gjs', '-m', PEER, m.props.session_id, 'vm-py-peer'],
                                  Gio.SubprocessFlags.STDOUT_PIPE)
        try:
            out = LineReader(proc)
            ready = out.read_line('the GJS peer to register').split()
            self.assertEqual(len(ready), 3, ready)
            self.assertEqual(ready[0], 'READY')
            js_sid = ready[1]
            self.assertEqual(ready[2], 'true', 'the GJS process did not list the Python session')

            # Nothing is called here: the GJS session can only arrive
            # through the registry monitor.
            run_until(lambda: seen('session-added', js_sid) and seen('sessions-changed'),
                      'session-added and sessions-changed for the GJS session')
            (_, added), = seen('session-added', js_sid)
            self.assertEqual(added.props.pid, int(proc.get_identifier()))
            theirs = m.get_all_active_sessions_sync(None)[js_sid]
            self.assertEqual(theirs.props.vm_id, 'vm-js-peer')
            self.assertEqual(theirs.props.components, ['js'])

            # And ours arrives there the same way.
            self.assertTrue(m.register_vm_sync('vm-py-peer', 'europe-west4-a', ['py'], None, None))
            self.assertEqual(out.read_line('the GJS peer to see the Python VM'),
                             'SAW %s vm-py-peer' % m.props.session_id)
            self.assertEqual(wait_exit(proc, 'the GJS peer to exit'), 0)
        finally:
            proc.force_exit()

        # It closed without a VM: its entry leaves, and we hear of it.
        run_until(lambda: seen('session-removed', js_sid), 'session-removed for the GJS session')
        self.assertIsNone(Gsm.SessionList.new(None, None).lookup(js_sid))
        m.unregister_vm_sync(None)

if __name__ == '__main__':
    main(CrossLanguage)
