#!/usr/bin/python3
# monitor_sessions.py: list the live gsm-session sessions, and follow changes
#
#   monitor_sessions.py                  print the active sessions once
#   monitor_sessions.py --follow         then print every change (Ctrl-C ends)
#   monitor_sessions.py --follow --max-changes N
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import argparse
import signal
import sys

import gi

gi.require_version('GLib', '2.0')
gi.require_version('Gsm', '1.0')
from gi.repository import GLib, Gsm  # noqa: E402


def describe(session):
    vm = session.props.vm_id or 'no VM'
    return f'Session {session.props.session_id[:8]}: PID {session.props.pid} on {session.props.hostname}, {vm}'


def print_sessions(manager, sessions):
    print(f'Active sessions: {len(sessions)}')
    for sid, session in sorted(sessions.items()):
        mark = '* ' if sid == manager.props.session_id else '  '
        print(f'{mark}{describe(session)}')
    sys.stdout.flush()


def main():
    parser = argparse.ArgumentParser(description='List the live gsm-session sessions.')
    parser.add_argument('--follow', action='store_true', help='keep printing changes')
    parser.add_argument('--max-changes', type=int, default=0, metavar='N',
                        help='with --follow, exit after N changes')
    args = parser.parse_args()

    manager = Gsm.SessionManager.get_default()
    loop = GLib.MainLoop()
    status = 0
    changes = 0

    def on_listed(m, result):
        nonlocal status
        try:
            print_sessions(m, m.get_all_active_sessions_finish(result))
        except GLib.Error as e:
            print(f'Cannot list the sessions: {e.message}', file=sys.stderr)
            status = 1
            loop.quit()
            return
        if not args.follow:
            loop.quit()

    def on_change(m, session, sign):
        nonlocal changes
        print(f'{sign} {describe(session)}', flush=True)
        changes += 1
        if args.max_changes and changes >= args.max_changes:
            loop.quit()

    if args.follow:
        manager.connect('session-added', on_change, '+')
        manager.connect('session-removed', on_change, '-')
        manager.connect('session-stale', on_change, '!')
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)

    manager.get_all_active_sessions(None, on_listed)
    loop.run()
    manager.close_sync(None)
    return status


if __name__ == '__main__':
    sys.exit(main())
