"""The status file's contract: one schema (status/schema.py) that both sides are checked against."""

from __future__ import annotations

import dataclasses
from typing import get_args

import msgspec
import pytest

from lspguard.causes.model import Blocker, CauseClass, Culprit
from lspguard.causes.verdict import VerdictKind as PyVerdictKind
from lspguard.proxy.lifecycle import Phase
from lspguard.status.schema import (
    SCHEMA_FILE,
    STATES,
    TS_FILE,
    CauseObject,
    CauseProcess,
    SessionStatus,
    VerdictKind,
    json_schema,
    typescript,
)

pytestmark = pytest.mark.timeout(10)


def test_the_committed_json_schema_and_typescript_are_generated_from_the_structs() -> None:
    """If this fails: run `python -m lspguard.status.schema` and commit both files."""
    assert SCHEMA_FILE.read_text() == json_schema()
    assert TS_FILE.read_text() == typescript()


def test_the_contract_names_exactly_what_python_writes() -> None:
    # Every lifecycle phase, and "slow": a state of a running session, not a phase of its own
    # (session/session.py `Session.state`).
    assert set(STATES) == {p.value for p in Phase} | {"slow"}
    assert set(get_args(VerdictKind)) == {k.value for k in PyVerdictKind}
    assert {c.value for c in CauseClass} <= set(get_args(VerdictKind))


def test_a_document_that_breaks_the_contract_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="state"):
        msgspec.convert({"schema": 2, "pid": 1, "state": "hung"}, SessionStatus)


def test_the_cause_model_and_its_contract_name_the_same_fields() -> None:
    """Declared twice on purpose: causes/model.py is what the classifier builds, status/schema.py
    the wire contract the extension is generated from. A field added to one must reach the other."""
    assert {f.name for f in dataclasses.fields(Blocker)} == set(CauseObject.__struct_fields__)
    assert {f.name for f in dataclasses.fields(Culprit)} == set(CauseProcess.__struct_fields__)
