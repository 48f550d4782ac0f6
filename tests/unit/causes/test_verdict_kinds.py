"""The table of the verdict kinds (causes/kinds.py): one row per kind, its columns agree with
each other, and every copy of it (the status contract's Literals, the extension's generated
module) equals it."""

from __future__ import annotations

from typing import get_args

import pytest

from lspguard.causes.classify import EARLY_CLASSES
from lspguard.causes.kinds import KINDS, TS_FILE, Action, Escalation, VerdictKind, row, typescript
from lspguard.causes.model import CauseClass
from lspguard.causes.policy import POLICY
from lspguard.status import schema

pytestmark = pytest.mark.timeout(10)

CLASSES = [r for r in KINDS if r.rank is not None]


def test_the_committed_typescript_is_generated_from_the_table() -> None:
    """If this fails: run `python -m lspguard.causes.kinds` and commit the file."""
    assert TS_FILE.read_text() == typescript()


def test_every_kind_has_one_row_in_the_order_of_the_enum() -> None:
    assert [r.kind for r in KINDS] == list(VerdictKind)
    assert all(row(k.value).kind is k for k in VerdictKind)


def test_the_status_contract_names_the_kinds_of_the_table() -> None:
    """status/schema.py lies below causes/ and cannot import the table: its Literals are a copy."""
    assert get_args(schema.VerdictKind) == tuple(r.kind.value for r in KINDS)
    assert set(get_args(schema.CauseClass)) == {r.kind.value for r in CLASSES}
    assert {c.value for c in CauseClass} == {r.kind.value for r in CLASSES}


def test_the_columns_agree() -> None:
    for r in KINDS:
        assert "_" not in r.phrase, r
        if r.early:
            assert r.outside and r.confirm_restarts == 0, r
        if r.outside:
            assert r.action is Action.WAIT_ON_CAUSE and r.escalation is Escalation.PLAIN, r
            assert r.rank is not None and r.confirm_restarts <= 1, r
        else:
            assert r.action is Action.RESTART and r.confirm_restarts == 0, r
        if r.rank is None:
            assert r.restart_clause is None, r
    for r in CLASSES:
        assert r.bar and r.restart_clause, r
        said = r.restart_clause.format(server="gopls")
        if r.outside:
            assert ("cannot fix" in said) == (r.confirm_restarts == 0), r
            assert ("once" in said) == (r.confirm_restarts == 1), r


def test_what_derives_from_the_table_is_what_it_was() -> None:
    """The values the table replaced (issue 18), as they were written out before it."""
    assert {c for c in CauseClass if c.external} == {
        CauseClass.FILESYSTEM, CauseClass.SPECIAL_FILE, CauseClass.CHILD, CauseClass.NETWORK,
        CauseClass.KERNEL}
    assert set(EARLY_CLASSES) == {CauseClass.FILESYSTEM, CauseClass.SPECIAL_FILE, CauseClass.KERNEL}
    assert {c: row(c.value).rank for c in CauseClass} == {
        CauseClass.STOPPED: 0, CauseClass.FILESYSTEM: 1, CauseClass.SPECIAL_FILE: 1,
        CauseClass.KERNEL: 1, CauseClass.NETWORK: 2, CauseClass.CPU: 3, CauseClass.CHILD: 4,
        CauseClass.DEADLOCK: 5}
    assert {k for k, p in POLICY.items() if p.escalation is Escalation.HANG} == {
        "busy_spin", "deadlocked", "handshake_timeout"}
    assert {k for k, p in POLICY.items() if p.escalation is Escalation.MEMORY} == {
        "out_of_memory"}
    assert {k: p.confirm_restarts for k, p in POLICY.items() if p.confirm_restarts} == {
        "network_peer_not_answering": 1, "child_never_returns": 1}
