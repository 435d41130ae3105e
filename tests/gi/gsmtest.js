// gsmtest.js: shared helpers of the GJS tests
//
// Imported first by every test: it gives the process its own runtime
// directory (the session manager reads the environment once, when it is
// created), promisifies the async methods and provides a TAP harness.
//
// SPDX-License-Identifier: LGPL-2.1-or-later

import GLib from 'gi://GLib';
import Gio from 'gi://Gio';
import GObject from 'gi://GObject';
import Gsm from 'gi://Gsm?version=1.0';
import System from 'system';

export {GLib, GObject, Gio, Gsm, System};

export const RUNTIME_DIR = GLib.dir_make_tmp('gsm-gi-js-XXXXXX');
GLib.setenv('GSM_RUNTIME_DIR', RUNTIME_DIR, true);

// Generous bound for waiting on other processes; never asserted as a timing.
export const WAIT_SECONDS = 15;

for (const name of ['register_vm', 'get_my_vm', 'unregister_vm', 'get_all_active_sessions',
    'cleanup_stale_sessions', 'close'])
    Gio._promisify(Gsm.SessionManager.prototype, name, `${name}_finish`);
Gio._promisify(Gio.DataInputStream.prototype, 'read_line_async', 'read_line_finish_utf8');
Gio._promisify(Gio.Subprocess.prototype, 'wait_async', 'wait_finish');
Gio._promisify(Gio.Subprocess.prototype, 'communicate_utf8_async', 'communicate_utf8_finish');

function removeTree(path) {
    const dir = Gio.File.new_for_path(path);
    const children = dir.enumerate_children('standard::name', Gio.FileQueryInfoFlags.NOFOLLOW_SYMLINKS, null);
    let info;
    while ((info = children.next_file(null)) !== null)
        dir.get_child(info.get_name()).delete(null);
    children.close(null);
    dir.delete(null);
}

export class AssertionError extends Error {}

function show(v) {
    if (v instanceof GLib.Variant)
        return `GLib.Variant(${v.print(true)})`;
    try {
        return JSON.stringify(v);
    } catch {
        return String(v);
    }
}

export function assert(cond, msg = 'assertion failed') {
    if (!cond)
        throw new AssertionError(msg);
}

export function assertEqual(actual, expected, msg = '') {
    const same = typeof expected === 'object' && expected !== null
        ? JSON.stringify(actual) === JSON.stringify(expected)
        : actual === expected;
    if (!same)
        throw new AssertionError(`${msg ? `${msg}: ` : ''}${show(actual)} !== ${show(expected)}`);
}

// Awaits fn() and returns the GLib.Error it must throw.
export async function assertThrowsGError(fn, domain, code, msg = '') {
    try {
        await fn();
    } catch (e) {
        if (!(e instanceof GLib.Error))
            throw new AssertionError(`${msg}: expected a GLib.Error, got ${e}`);
        if (!e.matches(domain, code))
            throw new AssertionError(`${msg}: expected ${domain}/${code}, got ${e.domain}/${e.code}: ${e.message}`);
        return e;
    }
    throw new AssertionError(`${msg}: no error`);
}

export function sleep(ms) {
    return new Promise(resolve => GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        resolve();
        return GLib.SOURCE_REMOVE;
    }));
}

// Lets the main loop run until pred() holds (checked every 10 ms).
export async function waitUntil(pred, what, seconds = WAIT_SECONDS) {
    const deadline = GLib.get_monotonic_time() + seconds * 1000000;
    while (!pred()) {
        if (GLib.get_monotonic_time() > deadline)
            throw new AssertionError(`timed out after ${seconds}s waiting for ${what}`);
        // eslint-disable-next-line no-await-in-loop
        await sleep(10);
    }
}

// A C session process ($GSM_TEST_WORKER register VM) in our runtime directory.
export class Worker {
    static async start(vmId, zone = 'us-central1-a') {
        const w = new Worker();
        w.proc = Gio.Subprocess.new([GLib.getenv('GSM_TEST_WORKER'), 'register', vmId, zone],
            Gio.SubprocessFlags.STDOUT_PIPE | Gio.SubprocessFlags.STDIN_PIPE);
        const stream = new Gio.DataInputStream({base_stream: w.proc.get_stdout_pipe()});
        const [line] = await stream.read_line_async(GLib.PRIORITY_DEFAULT, null);
        const words = (line ?? '').split(' ');
        if (words.length !== 3 || words[0] !== 'READY') {
            w.kill();
            throw new AssertionError(`worker failed: ${line}`);
        }
        [, w.sessionId] = words;
        w.pid = parseInt(words[2]);
        return w;
    }

    kill() {
        this.proc.force_exit();
        this.proc.wait(null);
    }
}

// Runs [name, async fn, todo] triples in order, reporting TAP (a test with
// a todo reason is reported as TAP TODO); exits the process.
export function runTests(tests) {
    const loop = new GLib.MainLoop(null, false);
    let failures = 0;

    async function runAll() {
        print(`1..${tests.length}`);
        let n = 0;
        for (const [name, fn, todo] of tests) {
            n++;
            const directive = todo ? ` # TODO ${todo}` : '';
            try {
                // eslint-disable-next-line no-await-in-loop
                await fn();
                print(`ok ${n} - ${name}${directive}`);
            } catch (e) {
                if (!todo)
                    failures++;
                print(`not ok ${n} - ${name}${directive}`);
                for (const line of `${e}\n${e.stack ?? ''}`.trimEnd().split('\n'))
                    print(`# ${line}`);
            }
        }
    }

    runAll().catch(e => {
        failures++;
        print(`Bail out! ${e}`);
    }).finally(() => loop.quit());
    loop.run();
    removeTree(RUNTIME_DIR);
    System.exit(failures ? 1 : 0);
}
