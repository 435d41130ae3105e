# Gsm.py: the PyGObject override of the Gsm namespace
#
# Installed in PyGObject's gi/overrides directory, it is loaded by
# `from gi.repository import Gsm`. It adds, without changing the C API:
#
# - Gsm.SessionManager.register_vm() and register_vm_sync() accept
#   `metadata` as a Python dict (converted to an a{sv} GLib.Variant) and
#   refuse what C would misread: a bare str as `components` (TypeError), a
#   str holding a NUL character (ValueError, PyGObject would cut it there);
# - Gsm.Session.to_dict();
# - Gsm.get_session_manager(): a Gsm.AsyncSessionManager, whose methods
#   are asyncio coroutines with the names of the Python design gsm-session
#   reimplements, and whose signal handlers run on the asyncio loop.
#   Gsm.is_session_manager_available() tells if the manager exists.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import asyncio
import functools
import threading

from gi.repository import GLib, Gio

from ..module import get_introspection_module
from ..overrides import override

Gsm = get_introspection_module('Gsm')

__all__ = []


# ---- arguments -----------------------------------------------------------

def _check_str(what, value):
    if not isinstance(value, str):
        raise TypeError('%s must be a str, not %s' % (what, type(value).__name__))
    if '\x00' in value:
        raise ValueError('%s holds a NUL character: %r' % (what, value))
    return value


def _components(components):
    if components is None:
        return None
    if isinstance(components, (str, bytes)):
        raise TypeError('components must be a list of str, not a single %s: %r'
                        % (type(components).__name__, components))
    if not isinstance(components, (list, tuple)):
        raise TypeError('components must be a list of str, not %s' % type(components).__name__)
    return [_check_str('components[%d]' % i, c) for i, c in enumerate(components)]


def _variant(value, where):
    # bool before int: bool is a subclass of int
    if isinstance(value, GLib.Variant):
        return value
    if isinstance(value, bool):
        return GLib.Variant('b', value)
    if isinstance(value, int):
        if not -2**63 <= value < 2**63:
            raise ValueError('%s: %d does not fit in 64 bits' % (where, value))
        return GLib.Variant('x', value)
    if isinstance(value, float):
        return GLib.Variant('d', value)
    if isinstance(value, str):
        return GLib.Variant('s', _check_str(where, value))
    if isinstance(value, dict):
        return _vardict(value, where)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return GLib.Variant('as', [_check_str('%s[%d]' % (where, i), v) for i, v in enumerate(value)])
    raise TypeError('%s: metadata cannot hold a value of type %s (use str, bool, int, float, '
                    'a dict of them or a list of str)' % (where, type(value).__name__))


def _vardict(mapping, where='metadata'):
    if isinstance(mapping, GLib.Variant):
        return mapping
    if not isinstance(mapping, dict):
        raise TypeError('%s must be a dict or an a{sv} GLib.Variant, not %s'
                        % (where, type(mapping).__name__))
    entries = {}
    for key, value in mapping.items():
        if not isinstance(key, str):
            raise TypeError('%s: keys must be str, not %s' % (where, type(key).__name__))
        _check_str('%s key' % where, key)
        entries[key] = _variant(value, '%s[%r]' % (where, key))
    return GLib.Variant('a{sv}', entries)


def _register_args(vm_id, zone, components, metadata):
    return (_check_str('vm_id', vm_id), _check_str('zone', zone), _components(components),
            None if metadata is None else _vardict(metadata))


# ---- the GObject types ---------------------------------------------------

class SessionManager(Gsm.SessionManager):

    def register_vm(self, vm_id, zone, components=None, metadata=None, cancellable=None,
                    *args, **kwargs):
        # The rest goes through untouched: a callback and its data, or
        # nothing where PyGObject turns the call into an awaitable.
        return super().register_vm(*_register_args(vm_id, zone, components, metadata),
                                   cancellable, *args, **kwargs)

    def register_vm_sync(self, vm_id, zone, components=None, metadata=None, cancellable=None):
        return super().register_vm_sync(*_register_args(vm_id, zone, components, metadata),
                                        cancellable)

    def reserve_vm(self, vm_id, zone, components=None, metadata=None, cancellable=None,
                   *args, **kwargs):
        return super().reserve_vm(*_register_args(vm_id, zone, components, metadata),
                                  cancellable, *args, **kwargs)

    def reserve_vm_sync(self, vm_id, zone, components=None, metadata=None, cancellable=None):
        return super().reserve_vm_sync(*_register_args(vm_id, zone, components, metadata),
                                       cancellable)


SessionManager = override(SessionManager)
__all__.append('SessionManager')


def _unpack(variant):
    return {} if variant is None else variant.unpack()


class Session(Gsm.Session):

    def to_dict(self):
        """The registry entry as a dict: session_id, pid, hostname,
        created_at, status and, if it owns a VM, vm_id, zone, components,
        metadata and registered_at."""
        d = {
            'session_id': self.props.session_id,
            'pid': self.props.pid,
            'hostname': self.props.hostname,
            'created_at': self.props.created_at,
            'status': self.props.status,
        }
        if self.props.has_vm:
            d.update({
                'vm_id': self.props.vm_id,
                'zone': self.props.zone,
                'components': list(self.props.components or []),
                'metadata': _unpack(self.props.metadata),
                'registered_at': self.props.registered_at,
            })
        return d


Session = override(Session)
__all__.append('Session')


# ---- asyncio -------------------------------------------------------------

# How often the GLib main context the manager emits in is iterated from
# the asyncio loop: file monitors and signals wait at most this long.
PUMP_INTERVAL = 0.02


class AsyncSessionManager:
    """This process's session manager for asyncio programs.

    The operations are coroutines, run on the executor of the running loop
    with the thread-safe `_sync` functions (no GLib main loop is needed);
    cancelling one cancels the operation. While it is in use from a loop,
    the GLib main context the manager emits its signals in is iterated from
    that loop (when no other thread runs it), and handlers connected with
    connect() always run on the loop's thread. Get it with
    Gsm.get_session_manager()."""

    _instance = None
    _instance_lock = threading.Lock()

    def __init__(self, manager):
        self.manager = manager
        self._loop = None
        self._pump_handle = None

    # identity, as the properties of the Python design
    session_id = property(lambda self: self.manager.props.session_id)
    pid = property(lambda self: self.manager.props.pid)
    hostname = property(lambda self: self.manager.props.hostname)
    created_at = property(lambda self: self.manager.props.created_at)
    session_file = property(lambda self: self.manager.props.session_file.get_path())
    vm_registry = property(lambda self: self.manager.props.vm_registry.get_path())
    global_tracker_file = property(lambda self: self.manager.props.global_tracker_file.get_path())
    has_vm = property(lambda self: self.manager.props.has_vm)

    # -- the GLib main context, iterated from the loop

    def _bind(self):
        loop = asyncio.get_running_loop()
        if self._loop is loop and self._pump_handle is not None:
            return loop
        self._stop_pump()
        self._loop = loop
        # The asyncio loop of a newer PyGObject (gi.events) runs on the
        # default GLib main context already.
        if not type(loop).__module__.startswith('gi.'):
            self._pump()
        return loop

    def _pump(self):
        ctx = GLib.MainContext.default()
        # Skip a turn when another thread runs the context (a GLib.MainLoop).
        if ctx.acquire():
            try:
                for _ in range(100):
                    if not ctx.iteration(False):
                        break
            finally:
                ctx.release()
        self._pump_handle = self._loop.call_later(PUMP_INTERVAL, self._pump)

    def _stop_pump(self):
        if self._pump_handle is not None:
            self._pump_handle.cancel()
            self._pump_handle = None

    async def _run(self, func, *args):
        loop = self._bind()
        cancellable = Gio.Cancellable()
        future = loop.run_in_executor(None, functools.partial(func, *args, cancellable))
        try:
            return await future
        except asyncio.CancelledError:
            cancellable.cancel()
            raise

    # -- signals

    def connect(self, signal, handler, *args):
        """Connects handler to a signal of the manager. It is called on the
        loop running now as handler(self, *signal_args, *args), whatever
        thread emitted; if it returns a coroutine, that is run as a task.
        Returns an id for disconnect()."""
        loop = self._bind()
        loop_thread = threading.get_ident()

        def run(values):
            result = handler(self, *values, *args)
            if asyncio.iscoroutine(result):
                loop.create_task(result)

        def on_signal(_manager, *values):
            if loop.is_closed():
                return
            if threading.get_ident() == loop_thread:
                loop.call_soon(run, values)
            else:
                loop.call_soon_threadsafe(run, values)

        return self.manager.connect(signal, on_signal)

    def disconnect(self, handler_id):
        self.manager.disconnect(handler_id)

    # -- operations

    async def register_vm(self, vm_id, zone, components=None, metadata=None):
        """Records that this session owns vm_id; metadata is a dict.
        Returns True."""
        args = _register_args(vm_id, zone, components, metadata)
        return await self._run(self.manager.register_vm_sync, *args)

    async def reserve_vm(self, vm_id, zone, components=None, metadata=None):
        """Records vm_id as this session's before the cloud call that
        creates it (status 'creating'), so that a crash in between leaves
        an orphan for the reaper instead of a VM nobody knows. Confirm it
        with confirm_vm() once created, or release it with unregister_vm().
        Returns True."""
        args = _register_args(vm_id, zone, components, metadata)
        return await self._run(self.manager.reserve_vm_sync, *args)

    async def confirm_vm(self):
        """Records that the reserved VM now exists (status 'active')."""
        return await self._run(self.manager.confirm_vm_sync)

    async def get_my_vm(self):
        """The VM this session owns as a dict (see get_my_vm_sync()), or None."""
        vm = await self._run(self.manager.get_my_vm_sync)
        return self._vm_dict(vm)

    def get_my_vm_sync(self):
        """The VM this session owns, or None, as a dict with the keys
        session_id, pid, hostname, vm_id, zone, components, metadata,
        created_at, registered_at and status. No loop needed."""
        return self._vm_dict(self.manager.get_my_vm_sync(None))

    def _vm_dict(self, vm):
        # this session's entry: the dict of the Python design
        return None if vm is None else vm.to_dict()

    async def unregister_vm(self):
        """Ends this session's ownership of its VM."""
        return await self._run(self.manager.unregister_vm_sync)

    def unregister_vm_sync(self):
        return self.manager.unregister_vm_sync(None)

    async def get_all_active_sessions(self):
        """The live sessions, as {session_id: Gsm.Session.to_dict()}."""
        sessions = await self._run(self.manager.get_all_active_sessions_sync)
        return {sid: s.to_dict() for sid, s in sessions.items()}

    async def cleanup_stale_sessions(self):
        """Records the dead sessions; returns how many."""
        return await self._run(self.manager.cleanup_stale_sessions_sync)

    async def cleanup_my_vm(self, provider=None):
        """Deletes this session's VM with the provider, then unregisters it."""
        return await self._run(self.manager.cleanup_my_vm_sync, provider)

    def get_statistics(self):
        """The statistics as a dict (no I/O, so not a coroutine)."""
        return self.manager.get_statistics().unpack()

    async def close(self):
        """Ends this session, and stops iterating the GLib main context."""
        try:
            return await self._run(self.manager.close_sync)
        finally:
            self._stop_pump()

    def close_sync(self):
        self._stop_pump()
        return self.manager.close_sync(None)


def get_session_manager():
    """This process's Gsm.AsyncSessionManager, creating the session manager
    on the first call (from any thread)."""
    if AsyncSessionManager._instance is None:
        with AsyncSessionManager._instance_lock:
            if AsyncSessionManager._instance is None:
                AsyncSessionManager._instance = AsyncSessionManager(Gsm.SessionManager.get_default())
    return AsyncSessionManager._instance


def is_session_manager_available():
    """Whether this process's session manager exists already."""
    return Gsm.SessionManager.is_available()


__all__ += ['AsyncSessionManager', 'get_session_manager', 'is_session_manager_available']
