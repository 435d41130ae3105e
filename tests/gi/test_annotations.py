#!/usr/bin/python3
# test_annotations.py: the typelib says what the C API does
#
# Reads Gsm-1.0.typelib through GIRepository and compares every method,
# function, property and signal of GsmSessionManager and GsmSession
# (and the error domain) with the signatures below: nullability, transfer,
# element types, array termination, out/optional, callback scope and
# closure, and throws. A wrong, missing or typo'd annotation changes a line
# and fails the test; so does new API until its line is added here (review
# its annotations, then add it). The behaviour behind each line is tested
# in test_gsm.py and test-gsm.js.
#
# Notation: `name(arg: type, ...) -> type`; `?` nullable, `[full]`,
# `[container]` transfer other than none, `out`, `optional`,
# `scope=async closure=N`, `throws`.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import difflib
import unittest

import gsmtest  # noqa: F401 (environment, typelib path)
from gsmtest import main

import gi

gi.require_version('GIRepository', '2.0')
from gi.repository import GIRepository as R  # noqa: E402

MANAGER = '''
SessionManager.get_default() -> Gsm.SessionManager
SessionManager.is_available() -> gboolean
SessionManager.cleanup_my_vm(provider: Gsm.Provider?, cancellable: Gio.Cancellable?, callback: Gio.AsyncReadyCallback? scope=async closure=3, user_data: void?)
SessionManager.cleanup_my_vm_finish(result: Gio.AsyncResult) -> gboolean throws
SessionManager.cleanup_my_vm_sync(provider: Gsm.Provider?, cancellable: Gio.Cancellable?) -> gboolean throws
SessionManager.cleanup_stale_sessions(cancellable: Gio.Cancellable?, callback: Gio.AsyncReadyCallback? scope=async closure=2, user_data: void?)
SessionManager.cleanup_stale_sessions_finish(result: Gio.AsyncResult) -> gint32 throws
SessionManager.cleanup_stale_sessions_sync(cancellable: Gio.Cancellable?) -> gint32 throws
SessionManager.close(cancellable: Gio.Cancellable?, callback: Gio.AsyncReadyCallback? scope=async closure=2, user_data: void?)
SessionManager.close_finish(result: Gio.AsyncResult) -> gboolean throws
SessionManager.close_sync(cancellable: Gio.Cancellable?) -> gboolean throws
SessionManager.confirm_vm(cancellable: Gio.Cancellable?, callback: Gio.AsyncReadyCallback? scope=async closure=2, user_data: void?)
SessionManager.confirm_vm_finish(result: Gio.AsyncResult) -> gboolean throws
SessionManager.confirm_vm_sync(cancellable: Gio.Cancellable?) -> gboolean throws
SessionManager.get_all_active_sessions(cancellable: Gio.Cancellable?, callback: Gio.AsyncReadyCallback? scope=async closure=2, user_data: void?)
SessionManager.get_all_active_sessions_finish(result: Gio.AsyncResult) -> GHashTable<utf8,Gsm.Session>[container] throws
SessionManager.get_all_active_sessions_sync(cancellable: Gio.Cancellable?) -> GHashTable<utf8,Gsm.Session>[container] throws
SessionManager.get_created_at() -> gdouble
SessionManager.get_global_tracker_file() -> Gio.File
SessionManager.get_has_vm() -> gboolean
SessionManager.get_hostname() -> utf8
SessionManager.get_my_vm(cancellable: Gio.Cancellable?, callback: Gio.AsyncReadyCallback? scope=async closure=2, user_data: void?)
SessionManager.get_my_vm_finish(result: Gio.AsyncResult) -> Gsm.Session?[full] throws
SessionManager.get_my_vm_sync(cancellable: Gio.Cancellable?) -> Gsm.Session?[full] throws
SessionManager.get_pid() -> gint32
SessionManager.get_runtime_dir() -> Gio.File
SessionManager.get_session_file() -> Gio.File
SessionManager.get_session_id() -> utf8
SessionManager.get_statistics() -> GLib.Variant[full]
SessionManager.get_vm_labels() -> GLib.Variant[full]
SessionManager.get_vm_registry() -> Gio.File
SessionManager.install_shutdown_handlers(provider: Gsm.Provider?, loop: GLib.MainLoop)
SessionManager.install_shutdown_handlers_full(provider: Gsm.Provider?, func: Gsm.ShutdownFunc scope=notified closure=2, user_data: void?, notify: GLib.DestroyNotify? scope=async)
SessionManager.register_vm(vm_id: utf8, zone: utf8, components: array<utf8,zt>?, metadata: GLib.Variant?, cancellable: Gio.Cancellable?, callback: Gio.AsyncReadyCallback? scope=async closure=6, user_data: void?)
SessionManager.register_vm_finish(result: Gio.AsyncResult) -> gboolean throws
SessionManager.register_vm_sync(vm_id: utf8, zone: utf8, components: array<utf8,zt>?, metadata: GLib.Variant?, cancellable: Gio.Cancellable?) -> gboolean throws
SessionManager.remove_shutdown_handlers()
SessionManager.reserve_vm(vm_id: utf8, zone: utf8, components: array<utf8,zt>?, metadata: GLib.Variant?, cancellable: Gio.Cancellable?, callback: Gio.AsyncReadyCallback? scope=async closure=6, user_data: void?)
SessionManager.reserve_vm_finish(result: Gio.AsyncResult) -> gboolean throws
SessionManager.reserve_vm_sync(vm_id: utf8, zone: utf8, components: array<utf8,zt>?, metadata: GLib.Variant?, cancellable: Gio.Cancellable?) -> gboolean throws
SessionManager.unregister_vm(cancellable: Gio.Cancellable?, callback: Gio.AsyncReadyCallback? scope=async closure=2, user_data: void?)
SessionManager.unregister_vm_finish(result: Gio.AsyncResult) -> gboolean throws
SessionManager.unregister_vm_sync(cancellable: Gio.Cancellable?) -> gboolean throws
SessionManager:created-at gdouble r
SessionManager:global-tracker-file Gio.File r
SessionManager:has-vm gboolean r
SessionManager:hostname utf8 r
SessionManager:pid gint32 r
SessionManager:runtime-dir Gio.File r
SessionManager:session-file Gio.File r
SessionManager:session-id utf8 r
SessionManager:vm-registry Gio.File r
SessionManager::ownership-lapsed(session: Gsm.Session)
SessionManager::session-added(session: Gsm.Session)
SessionManager::session-removed(session: Gsm.Session)
SessionManager::session-stale(session: Gsm.Session)
SessionManager::sessions-changed()
SessionManager::vm-registered(vm: Gsm.Session)
SessionManager::vm-unregistered(vm: Gsm.Session)
'''

SESSION = '''
Session.get_boot_id() -> utf8?
Session.get_components() -> array<utf8,zt>
Session.get_created_at() -> gdouble
Session.get_has_vm() -> gboolean
Session.get_hostname() -> utf8
Session.get_metadata() -> GLib.Variant
Session.get_pid() -> gint32
Session.get_registered_at() -> gdouble
Session.get_session_id() -> utf8
Session.get_stale_since() -> gdouble
Session.get_start_time() -> guint64
Session.get_status() -> utf8
Session.get_vm_id() -> utf8?
Session.get_zone() -> utf8?
Session.to_json() -> utf8[full]
Session.to_variant() -> GLib.Variant[full]
Session:boot-id utf8 r
Session:components GStrv r
Session:created-at gdouble r
Session:has-vm gboolean r
Session:hostname utf8 r
Session:metadata GLib.Variant r
Session:pid gint32 r
Session:registered-at gdouble r
Session:session-id utf8 r
Session:stale-since gdouble r
Session:start-time guint64 r
Session:status utf8 r
Session:vm-id utf8 r
Session:zone utf8 r
'''

SESSION_LIST = '''
SessionList.get_etcd_uri() -> utf8?
SessionList.get_liveness(session: Gsm.Session) -> Gsm.Liveness
SessionList.get_runtime_dir() -> filename?
SessionList.lookup(session_id: utf8) -> Gsm.Session?[full]
SessionList.lookup_vm(vm_id: utf8) -> Gsm.Session?[full]
SessionList.new(runtime_dir: filename?, cancellable: Gio.Cancellable?) -> Gsm.SessionList[full] throws
SessionList.new_for_etcd(uri: utf8, cancellable: Gio.Cancellable?) -> Gsm.SessionList[full] throws
SessionList:etcd-uri utf8 r
SessionList:item-type GType r
SessionList:n-items guint32 r
SessionList:runtime-dir utf8 r
'''

ERROR = '''
error_quark() -> guint32
Error: error-domain gsm-error-quark
'''


def type_str(ti):
    tag = R.type_info_get_tag(ti)
    if tag == R.TypeTag.INTERFACE:
        iface = R.type_info_get_interface(ti)
        return '%s.%s' % (iface.get_namespace(), iface.get_name())
    if tag == R.TypeTag.ARRAY:
        elem = type_str(R.type_info_get_param_type(ti, 0))
        return 'array<%s%s>' % (elem, ',zt' if R.type_info_is_zero_terminated(ti) else '')
    if tag == R.TypeTag.GHASH:
        return 'GHashTable<%s,%s>' % (type_str(R.type_info_get_param_type(ti, 0)),
                                      type_str(R.type_info_get_param_type(ti, 1)))
    if tag in (R.TypeTag.GLIST, R.TypeTag.GSLIST):
        return '%s<%s>' % (R.type_tag_to_string(tag), type_str(R.type_info_get_param_type(ti, 0)))
    return R.type_tag_to_string(tag)


TRANSFER = {R.Transfer.NOTHING: '', R.Transfer.CONTAINER: '[container]', R.Transfer.EVERYTHING: '[full]'}


def arg_str(a):
    s = '%s: %s%s%s' % (a.get_name(), type_str(R.arg_info_get_type(a)),
                         '?' if R.arg_info_may_be_null(a) else '',
                         TRANSFER[R.arg_info_get_ownership_transfer(a)])
    if R.arg_info_get_direction(a) != R.Direction.IN:
        s += ' ' + R.arg_info_get_direction(a).value_nick
    if R.arg_info_is_optional(a):
        s += ' optional'
    if R.arg_info_get_scope(a) != R.ScopeType.INVALID:
        s += ' scope=' + R.arg_info_get_scope(a).value_nick
    if R.arg_info_get_closure(a) >= 0:
        s += ' closure=%d' % R.arg_info_get_closure(a)
    return s


def callable_str(prefix, f):
    args = ', '.join(arg_str(R.callable_info_get_arg(f, i)) for i in range(R.callable_info_get_n_args(f)))
    s = '%s%s(%s)' % (prefix, f.get_name(), args)
    rt = R.callable_info_get_return_type(f)
    if R.type_info_get_tag(rt) != R.TypeTag.VOID or R.type_info_is_pointer(rt):
        s += ' -> %s%s%s' % (type_str(rt), '?' if R.callable_info_may_return_null(f) else '',
                             TRANSFER[R.callable_info_get_caller_owns(f)])
    if R.callable_info_can_throw_gerror(f):
        s += ' throws'
    return s


def class_lines(info):
    name = info.get_name()
    lines = []
    for i in range(R.object_info_get_n_methods(info)):
        lines.append(callable_str(name + '.', R.object_info_get_method(info, i)))
    for i in range(R.object_info_get_n_properties(info)):
        p = R.object_info_get_property(info, i)
        flags = R.property_info_get_flags(p)
        mode = ('r' if flags & 1 else '') + ('w' if flags & 2 else '')
        ptype = type_str(R.property_info_get_type(p))
        lines.append('%s:%s %s %s' % (name, p.get_name(), 'GStrv' if ptype == 'array<utf8,zt>' else ptype, mode))
    for i in range(R.object_info_get_n_signals(info)):
        lines.append(callable_str(name + '::', R.object_info_get_signal(info, i)).replace(' -> none', ''))
    return lines


class Annotations(unittest.TestCase):
    repo = R.Repository.get_default()

    @classmethod
    def setUpClass(cls):
        cls.repo.require('Gsm', '1.0', 0)

    def compare(self, expected, actual):
        expected = sorted(l for l in expected.strip().splitlines())
        actual = sorted(actual)
        if expected != actual:
            self.fail('typelib differs from the expected signatures:\n' +
                      '\n'.join(difflib.unified_diff(expected, actual, 'expected', 'typelib', lineterm='')))

    def test_session_manager(self):
        self.compare(MANAGER, class_lines(self.repo.find_by_name('Gsm', 'SessionManager')))

    def test_session(self):
        self.compare(SESSION, class_lines(self.repo.find_by_name('Gsm', 'Session')))

    def test_session_list(self):
        self.compare(SESSION_LIST, class_lines(self.repo.find_by_name('Gsm', 'SessionList')))
        # A GListModel of sessions, for every binding's list helpers.
        info = self.repo.find_by_name('Gsm', 'SessionList')
        self.assertIn('ListModel', [R.object_info_get_interface(info, i).get_name()
                                    for i in range(R.object_info_get_n_interfaces(info))])

    def test_no_vm_type(self):
        # GsmSession carries the VM: there is no second type for it.
        self.assertIsNone(self.repo.find_by_name('Gsm', 'Vm'))

    def test_error_domain(self):
        err = self.repo.find_by_name('Gsm', 'Error')
        quark = self.repo.find_by_name('Gsm', 'error_quark')
        lines = [callable_str('', quark),
                 'Error: error-domain %s' % R.enum_info_get_error_domain(err)]
        self.compare(ERROR, lines)

    def test_every_async_has_finish_and_sync(self):
        # What g-ir-scanner cannot pair, the naming must: x(), x_finish(), x_sync().
        for n in range(self.repo.get_n_infos('Gsm')):
            info = self.repo.get_info('Gsm', n)
            if info.get_type() != R.InfoType.OBJECT:
                continue
            methods = {R.object_info_get_method(info, i).get_name(): R.object_info_get_method(info, i)
                       for i in range(R.object_info_get_n_methods(info))}
            for name, f in methods.items():
                args = [R.callable_info_get_arg(f, i) for i in range(R.callable_info_get_n_args(f))]
                if any(R.arg_info_get_scope(a) == R.ScopeType.ASYNC and
                       type_str(R.arg_info_get_type(a)) == 'Gio.AsyncReadyCallback' for a in args):
                    self.assertIn(name + '_finish', methods, '%s.%s' % (info.get_name(), name))
                    self.assertIn(name + '_sync', methods, '%s.%s' % (info.get_name(), name))
                    self.assertTrue(R.callable_info_can_throw_gerror(methods[name + '_finish']))


if __name__ == '__main__':
    main(Annotations)
