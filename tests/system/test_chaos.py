"""Chaos: thousands of messages while the backend is SIGKILLed and SIGSTOPped at random.

Every editor request is answered exactly once (a result, or ContentModified when a restart cut
it off), notifications reach each server in the order sent, and the document text the final
server holds (asked through the scripted fault server's own view) equals the editor's.
"""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from ..faultproxy import DOC_URI, Proxy, initialize, start_proxy

pytestmark = pytest.mark.timeout(180)

CHAOS_RESTART = {"max_restarts": 1000, "window": 1.0, "backoff_initial": 0.05,
                 "queue_limit": 100000}
MESSAGES = 3000  # notifications and requests together; one in ten is a request
SEND_PER_S = 300


def test_chaos(tmp_path: Path, proxies: list[Proxy]) -> None:
    p = start_proxy(tmp_path, restart=CHAOS_RESTART)
    proxies.append(p)
    initialize(p)
    answers: dict[int, list[dict[str, Any]]] = {}
    answered = threading.Condition()

    def read() -> None:  # answers server requests; collects responses
        while (msg := p.client.read_message(60)) is not None:
            if "method" in msg and "id" in msg:
                try:
                    p.client.send({"jsonrpc": "2.0", "id": msg["id"], "result": None})
                except BrokenPipeError:  # the proxy ended (teardown): EOF comes next
                    continue
            elif "method" not in msg:
                with answered:
                    answers.setdefault(msg["id"], []).append(msg)
                    answered.notify_all()

    def ask(method: str, params: Any) -> Any:
        """Ask the surviving server; a ContentModified answer (a restart) means ask again."""
        deadline = time.monotonic() + 60
        while True:
            rid = p.request(method, params)
            with answered:
                assert answered.wait_for(lambda rid=rid: rid in answers,  # type: ignore[misc]
                                         max(0.0, deadline - time.monotonic())), method
                answer = answers[rid][0]
            if "result" in answer:
                return answer["result"]
            assert answer["error"]["code"] == -32801

    faults: list[str] = []
    stop_chaos = threading.Event()

    def chaos() -> None:
        rng = random.Random(7)
        while not stop_chaos.wait(rng.uniform(0.8, 2.0)):
            pid = p.status()["backend"]["pid"]
            if pid is None:
                continue
            sig = rng.choice([signal.SIGKILL, signal.SIGSTOP])
            try:
                psutil.Process(pid).send_signal(sig)
            except psutil.NoSuchProcess:
                continue
            faults.append(sig.name)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    chaos_thread = threading.Thread(target=chaos, daemon=True)
    chaos_thread.start()
    try:
        text = "package main\n\nfunc main() {}\n"
        version, seq, sent = 1, 0, []
        interval = 1.0 / SEND_PER_S
        while seq < MESSAGES:
            seq += 1
            if seq % 10 == 0:
                sent.append(p.request("fault/echo", {"seq": seq}))
            elif seq % 2 == 0:
                p.notify("fault/note", {"seq": seq})
            else:  # append a character to the first line
                version += 1
                line_end = text.index("\n")
                p.notify("textDocument/didChange", {
                    "textDocument": {"uri": DOC_URI, "version": version},
                    "contentChanges": [{"range": {"start": {"line": 0, "character": line_end},
                                                  "end": {"line": 0, "character": line_end}},
                                        "text": str(seq % 10)}]})
                text = text[:line_end] + str(seq % 10) + text[line_end:]
            time.sleep(interval)  # pacing of the editor's typing, not synchronisation
        stop_chaos.set()
        chaos_thread.join(10)

        document = ask("fault/documentText", {"uri": DOC_URI})
        notes = ask("fault/notes", None)

        assert len(sent) == MESSAGES // 10
        # Signals may hit a generation that is already being replaced, so restarts <= faults.
        assert {"SIGKILL", "SIGSTOP"} <= set(faults), faults
        assert p.status()["restarts"] >= 2
        missing = [i for i in sent if i not in answers]
        assert not missing, f"{len(missing)} requests never answered, e.g. {missing[:5]}"
        twice = [i for i in sent if len(answers[i]) != 1]
        assert not twice, f"answered more than once: {twice[:5]}"
        for i in sent:
            (answer,) = answers[i]
            assert "result" in answer or answer["error"]["code"] == -32801, answer
        assert any("result" in answers[i][0] for i in sent)
        assert document["text"] == text
        assert document["version"] == version
        assert notes == sorted(notes) and len(set(notes)) == len(notes)
    finally:
        # No thread outlives the test: end the proxy so the reader sees EOF, and join it
        # before the fixture closes the pipe it reads.
        stop_chaos.set()
        chaos_thread.join(10)
        p.client.proc.kill()
        p.client.proc.wait(10)
        reader.join(10)
    assert not reader.is_alive() and not chaos_thread.is_alive()
