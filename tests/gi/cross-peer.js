// cross-peer.js: the JavaScript side of test_cross_language.py
//
//   gjs -m cross-peer.js PYTHON_SESSION_ID PYTHON_VM_ID
//
// Registers vm-js-peer in $GSM_RUNTIME_DIR and prints
// "READY <session-id> <saw-python>", where saw-python tells whether the
// Python session was listed. Then waits, on ::sessions-changed, until the
// Python session owns PYTHON_VM_ID, prints "SAW <id> <vm>", unregisters,
// closes and exits 0. Exits 1 after 15 s without it.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import Gsm from 'gi://Gsm?version=1.0';
import System from 'system';

for (const name of ['register_vm', 'get_all_active_sessions', 'unregister_vm', 'close'])
    Gio._promisify(Gsm.SessionManager.prototype, name, `${name}_finish`);

const [pySessionId, pyVmId] = ARGV;
const loop = new GLib.MainLoop(null, false);
let status = 1;

async function main() {
    const manager = Gsm.SessionManager.get_default();
    await manager.register_vm('vm-js-peer', 'us-central1-a', ['js'], null, null);
    const sessions = await manager.get_all_active_sessions(null);
    print(`READY ${manager.session_id} ${pySessionId in sessions}`);

    await new Promise((resolve, reject) => {
        const timeout = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 15, () => {
            reject(new Error('no sessions-changed with the Python VM'));
            return GLib.SOURCE_REMOVE;
        });
        const id = manager.connect('sessions-changed', async () => {
            const now = await manager.get_all_active_sessions(null);
            if (now[pySessionId]?.vm_id !== pyVmId)
                return;
            manager.disconnect(id);
            GLib.source_remove(timeout);
            print(`SAW ${pySessionId} ${now[pySessionId].vm_id}`);
            resolve();
        });
    });

    await manager.unregister_vm(null);
    await manager.close(null);
    status = 0;
}

main().catch(e => printerr(`cross-peer: ${e}`)).finally(() => loop.quit());
loop.run();
System.exit(status);
