"""The status file's contract: one schema (status/schema.py) that both sides are checked against."""

from __future__ import annotations

from typing import get_args

import msgspec
import pytest

from lspguard.causes.model import CauseClass
from lspguard.proxy.lifecycle import Phase
from lspguard.status.schema import (
    SCHEMA_FILE,
    STATES,
    TS_FILE,
    SessionStatus,
    VerdictKind,
    json_schema,
    typescript,
)
from lspguard.supervise.verdict import VerdictKind as PyVerdictKind

pytestmark = pytest.mark.timeout(10)


def test_the_committed_json_schema_and_typescript_are_generated_from_the_structs() -> None:
    """If this fails: run `python -m lspguard.status.schema` and commit both files."""
    assert SCHEMA_FILE.read_text() == json_schema()
    assert TS_FILE.read_text() == typescript()


def test_the_contract_names_exactly_what_python_writes() -> None:
    assert set(STATES) == {p.value for p in Phase}
    assert set(get_args(VerdictKind)) == {k.value for k in PyVerdictKind}
    assert {c.value for c in CauseClass} <= set(get_args(VerdictKind))


def test_a_document_that_breaks_the_contract_is_refused() -> None:
    with pytest.raises(msgspec.ValidationError, match="state"):
        msgspec.convert({"schema": 2, "pid": 1, "state": "hung"}, SessionStatus)
