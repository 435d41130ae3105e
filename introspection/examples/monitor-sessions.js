// monitor-sessions.js: list the live gsm-session sessions, and follow changes
//
//   gjs -m monitor-sessions.js                  print the active sessions once
//   gjs -m monitor-sessions.js --follow         then print every change (Ctrl-C ends)
//   gjs -m monitor-sessions.js --follow --max-changes N
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Gsm from 'gi://Gsm?version=1.0';
import System from 'system';

Gio._promisify(Gsm.SessionManager.prototype, 'get_all_active_sessions',
    'get_all_active_sessions_finish');

const follow = ARGV.includes('--follow');
const maxIndex = ARGV.indexOf('--max-changes');
const maxChanges = maxIndex >= 0 ? parseInt(ARGV[maxIndex + 1]) : 0;

const describe = s =>
    `Session ${s.session_id.slice(0, 8)}: PID ${s.pid} on ${s.hostname}, ${s.vm_id ?? 'no VM'}`;

const manager = Gsm.SessionManager.get_default();
const loop = new GLib.MainLoop(null, false);
let status = 0;
let changes = 0;

if (follow) {
    for (const [signal, sign] of [['session-added', '+'], ['session-removed', '-'], ['session-stale', '!']]) {
        manager.connect(signal, (_manager, session) => {
            print(`${sign} ${describe(session)}`);
            if (maxChanges && ++changes >= maxChanges)
                loop.quit();
        });
    }
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 2 /* SIGINT */, () => loop.quit());
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15 /* SIGTERM */, () => loop.quit());
}

try {
    const sessions = await manager.get_all_active_sessions(null);
    print(`Active sessions: ${Object.keys(sessions).length}`);
    for (const [id, session] of Object.entries(sessions).sort())
        print(`${id === manager.session_id ? '* ' : '  '}${describe(session)}`);
    if (follow)
        loop.run();
} catch (e) {
    printerr(`Cannot list the sessions: ${e.message}`);
    status = 1;
}

manager.close_sync(null);
System.exit(status);
