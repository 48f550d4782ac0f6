"""`lspguard doctor`: each field-reported cause of gopls hangs, built for real in tmp_path, is
found, explained and given a fix; the report's JSON keeps the schema the extension parses."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import pytest

from lspguard.cli.main import main as cli_main
from lspguard.doctor import CHECKS, Finding, Limits, Report, Severity, run_doctor
from lspguard.doctor.cli import _CHECK_NAMES
from lspguard.doctor.context import DoctorContext
from lspguard.doctor.jsonc import JsoncError, parse
from lspguard.doctor.latency import check_latency, judge, percentile
from lspguard.doctor.runner import run_check
from lspguard.doctor.toolchain import load_go_env
from lspguard.procfs.mounts import mount_for, parse_mounts

SEVERITIES = {"ok", "info", "warning", "error"}
FINDING_KEYS = {"id", "severity", "title", "found", "why", "fix", "path", "line"}


@pytest.fixture
def caches(tmp_path: Path) -> dict[str, str]:
    """A go env whose caches are real, local and writable, as on a healthy machine."""
    mod, build = tmp_path / "gomodcache", tmp_path / "gocache"
    mod.mkdir()
    build.mkdir()
    return {"GOMODCACHE": str(mod), "GOCACHE": str(build), "GOFLAGS": "",
            "GOPROXY": "https://proxy.golang.org,direct", "GOWORK": "", "GO111MODULE": ""}


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "GOPLSCACHE": str(tmp_path / "goplscache")}


def only(report: Report, finding_id: str) -> Finding:
    found = report.by_id(finding_id)
    assert len(found) == 1, f"{finding_id}: {[f.as_dict() for f in report.findings]}"
    return found[0]


def line_of(text: str, needle: str) -> int:
    """1-based line of the (unique) line containing needle."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


# ------------------------------------------------------------------------------------ symlinks


def test_symlink_loop_and_cycle_are_errors_with_fixes(tmp_path: Path, caches: dict[str, str]
                                                      ) -> None:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    (ws / "pkg" / "a.go").write_text("package pkg\n")
    (ws / "loop-a").symlink_to("loop-b")
    (ws / "loop-b").symlink_to("loop-a")
    (ws / "pkg" / "up").symlink_to("..")  # ws/pkg/up/pkg/up/... forever

    report = run_doctor(ws, go_env=caches, checks={"symlinks"})

    loops = report.by_id("symlinks.loop")
    assert sorted(Path(f.path or "").name for f in loops) == ["loop-a", "loop-b"]
    assert all(f.severity is Severity.ERROR and "ELOOP" in f.found for f in loops)
    assert "rm '" in loops[0].fix and "build.directoryFilters" in loops[0].fix
    cycle = only(report, "symlinks.cycle")
    assert cycle.path == str(ws.resolve() / "pkg" / "up")
    assert "ancestor" in cycle.fix and "files.watcherExclude" in cycle.fix
    assert report.exit_code == 2


def test_symlink_into_module_cache(tmp_path: Path, caches: dict[str, str]) -> None:
    dep = Path(caches["GOMODCACHE"]) / "example.com" / "dep@v1.2.3"
    dep.mkdir(parents=True)
    (dep / "dep.go").write_text("package dep\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "dep").symlink_to(dep)
    (ws / "other").symlink_to(elsewhere)
    (elsewhere / "shared.go").write_text("package shared\n")
    (elsewhere / "README").write_text("not Go\n")
    (ws / "shared.go").symlink_to(elsewhere / "shared.go")
    (ws / "README").symlink_to(elsewhere / "README")  # harmless: not reported

    report = run_doctor(ws, go_env=caches, checks={"symlinks"})

    into = only(report, "symlinks.modcache")
    assert into.severity is Severity.WARNING
    assert caches["GOMODCACHE"] in into.found and "dep@v1.2.3" in into.found
    assert "replace" in into.fix and "go work use" in into.fix
    outside = only(report, "symlinks.outside")
    assert str(elsewhere) in outside.found
    go_link = only(report, "symlinks.outside-files")
    assert "1 Go file link" in go_link.found and "shared.go" in go_link.found
    assert not report.by_id("symlinks.ok")


def test_symlink_walk_is_bounded(tmp_path: Path, caches: dict[str, str]) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    for i in range(30):
        (ws / f"f{i}").write_text("")
    report = run_doctor(ws, go_env=caches, checks={"symlinks"}, limits=Limits(max_files=10))
    assert "stopped after 10 entries" in only(report, "symlinks.truncated").found


# ------------------------------------------------------------------------------- devcontainer

GOMODCACHE_BIND = """\
// Go dev container (JSONC: comments and trailing commas are allowed)
{
  "name": "go", /* inline comment */
  "image": "mcr.microsoft.com/devcontainers/go:1",
  "mounts": [
    "source=${localEnv:HOME}/go/pkg/mod,target=/go/pkg/mod,type=bind,consistency=cached",
  ],
  "containerEnv": {
    "GOMODCACHE": "/go/pkg/mod",  // shared with the host "to save downloads"
  },
}
"""

GOCACHE_UNMOUNTED = """\
{
  // the build cache survives rebuilds in a volume... or so we thought
  "mounts": [
    {"source": "gocache", "target": "/go/cache", "type": "volume"},
  ],
  "containerEnv": {
    "GOCACHE": "/root/.cache/go-build",
    "URL": "https://example.com/not/a // comment",
  },
}
"""

NO_CONSISTENCY = """\
{
  "workspaceFolder": "/workspace",
  "workspaceMount": "source=${localWorkspaceFolder},target=/workspace,type=bind",
  "mounts": ["source=gomodcache,target=/go/pkg/mod,type=volume",],
  "containerEnv": {"GOMODCACHE": "/go/pkg/mod",},
}
"""


def _devcontainer(tmp_path: Path, text: str, caches: dict[str, str],
                  name: str = ".devcontainer/devcontainer.json") -> tuple[Report, str]:
    ws = tmp_path / "ws"
    path = ws / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return run_doctor(ws, go_env=caches, checks={"devcontainer"}), str(path)


def _the_one_finding(tmp_path: Path, text: str, caches: dict[str, str], finding_id: str,
                     at: str, name: str = ".devcontainer/devcontainer.json") -> Finding:
    """The doctor's one finding on the devcontainer.json `text`: `finding_id`, pointing at the
    line with `at` in it."""
    report, path = _devcontainer(tmp_path, text, caches, name)
    finding = only(report, finding_id)
    assert (finding.path, finding.line) == (path, line_of(text, at))
    assert [f.id for f in report.findings] == [finding_id]
    return finding


def test_devcontainer_gomodcache_on_host_bind_mount(tmp_path: Path, caches: dict[str, str]
                                                    ) -> None:
    finding = _the_one_finding(tmp_path, GOMODCACHE_BIND, caches, "devcontainer.gomodcache-bind",
                               at="target=/go/pkg/mod")
    assert finding.severity is Severity.ERROR
    assert "source=gomodcache,target=/go/pkg/mod,type=volume" in finding.fix


def test_devcontainer_gocache_not_the_volume_target(tmp_path: Path, caches: dict[str, str]
                                                    ) -> None:
    finding = _the_one_finding(tmp_path, GOCACHE_UNMOUNTED, caches,
                               "devcontainer.gocache-unmounted", at='"GOCACHE"')
    assert finding.severity is Severity.WARNING
    assert "/go/cache" in finding.found and "/root/.cache/go-build" in finding.found
    assert '"GOCACHE": "/go/cache"' in finding.fix


def test_devcontainer_bind_mount_without_consistency(tmp_path: Path, caches: dict[str, str]
                                                     ) -> None:
    finding = _the_one_finding(tmp_path, NO_CONSISTENCY, caches, "devcontainer.no-consistency",
                               at='"workspaceMount"', name=".devcontainer.json")
    assert "macOS" in finding.why
    assert finding.fix.endswith('type=bind,consistency=cached".')


def test_devcontainer_run_args_volume_and_parse_error(tmp_path: Path, caches: dict[str, str]
                                                      ) -> None:
    text = '{\n  "runArgs": [\n    "-v",\n    "${localEnv:HOME}/go:/go",\n  ],\n' \
           '  "containerEnv": {"GOPATH": "/go"}\n}\n'
    report, _ = _devcontainer(tmp_path / "a", text, caches)
    bind = only(report, "devcontainer.gomodcache-bind")
    assert bind.line == 4 and "/go/pkg/mod" in bind.found  # GOPATH/pkg/mod under the bind
    assert only(report, "devcontainer.no-consistency").line == 4

    report, _ = _devcontainer(tmp_path / "b", '{\n  "mounts": [\n    "x" "y"\n  ]\n}\n', caches)
    broken = only(report, "devcontainer.parse-error")
    assert (broken.severity, broken.line) == (Severity.ERROR, 3)


def test_jsonc_reader_positions_and_errors() -> None:
    doc = parse('// c\n{\n  "a": [1, /* x */ 2.5e1,],\n  "b": {"c": "//x\\"y"},\n'
                '  "d":\n    null,\n}')
    assert doc.value == {"a": [1, 25.0], "b": {"c": '//x"y'}, "d": None}
    assert (doc.line_of("a"), doc.line_of("a", 1), doc.line_of("b", "c")) == (3, 3, 4)
    assert doc.line_of("d") == 5  # a member is reported at its key
    with pytest.raises(JsoncError) as err:
        parse('{\n  "a": 1\n  "b": 2\n}')
    assert err.value.line == 3


# --------------------------------------------------------------------------------- writable


def test_unwritable_caches_are_errors(tmp_path: Path, environ: dict[str, str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a directory should be\n")
    ws = tmp_path / "ws"
    ws.mkdir()
    go_env = {"GOCACHE": str(blocker / "go-build"), "GOMODCACHE": "/proc/lspguard-gomodcache"}

    report = run_doctor(ws, go_env=go_env, environ=environ, checks={"writable"})

    gocache = only(report, "writable.gocache")
    assert gocache.severity is Severity.ERROR
    assert "is not a directory" in gocache.found
    assert "GOCACHE" in gocache.fix and "chown" in gocache.fix
    modcache = only(report, "writable.gomodcache")
    assert modcache.severity is Severity.ERROR and "mkdir in /proc fails" in modcache.found
    assert only(report, "writable.goplscache").severity is Severity.OK
    assert not list(Path(environ["GOPLSCACHE"]).parent.glob(".lspguard-doctor-*"))


def test_gocache_off_is_an_error(tmp_path: Path, environ: dict[str, str]) -> None:
    report = run_doctor(tmp_path, go_env={"GOCACHE": "off"}, environ=environ,
                        checks={"writable"})
    finding = only(report, "writable.gocache")
    assert finding.severity is Severity.ERROR and "HOME" in finding.fix


# ----------------------------------------------------------------------------------- mounts


def test_simulated_docker_desktop_mounts(tmp_path: Path, caches: dict[str, str],
                                         environ: dict[str, str]) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    real_mod, real_ws = Path(caches["GOMODCACHE"]).resolve(), ws.resolve()
    mounts = (
        "overlay / overlay rw,relatime 0 0\n"
        f"grpcfuse {real_mod} fuse.grpcfuse rw,nosuid,nodev 0 0\n"
        f"/run/host_mark/Users {real_ws} osxfs rw,relatime 0 0\n"
    )
    report = run_doctor(ws, go_env=caches, environ=environ, mounts_text=mounts,
                        checks={"mounts"})

    modcache = only(report, "mounts.gomodcache")
    assert modcache.severity is Severity.ERROR and "fuse.grpcfuse" in modcache.found
    assert "type=volume" in modcache.fix
    workspace = only(report, "mounts.workspace")
    assert workspace.severity is Severity.WARNING and "osxfs" in workspace.found
    assert "VirtioFS" in workspace.fix and "consistency=cached" in workspace.fix
    assert only(report, "mounts.gocache").severity is Severity.OK  # on overlay


def test_mount_table_parsing() -> None:
    mounts = parse_mounts("a /x ext4 rw 0 0\nb /x/my\\040dir 9p rw 0 0\nc /x nfs4 rw 0 0\nbad\n")
    assert [m.mount_point for m in mounts] == ["/x", "/x/my dir", "/x"]
    assert mount_for("/x/my dir/f", mounts) == mounts[1]
    assert mount_for("/x/other", mounts) == mounts[2]  # the later mount shadows
    assert mount_for("/xy", mounts) is None


# --------------------------------------------------------------------------- latency, runner


def test_slow_stat_is_flagged(tmp_path: Path, caches: dict[str, str]) -> None:
    slow = judge("gomodcache", "Module cache", caches["GOMODCACHE"], [3_000_000] * 20)
    assert slow.severity is Severity.WARNING and "p50 3.000 ms" in slow.found
    assert "mounts" in slow.fix
    assert judge("workspace", "Workspace", tmp_path, [30_000_000] * 20).severity is Severity.ERROR
    assert percentile([5, 1, 4, 2, 3], 50) == 3 and percentile([1, 2], 99) == 2

    for i in range(20):  # the real sample, taken by a helper: a local disk is fast
        (Path(caches["GOMODCACHE"]) / f"m{i}").write_text("")
    ctx = DoctorContext(workspace=tmp_path / "gocache", go_env=caches)
    findings = {f.id: f for f in check_latency(ctx)}
    assert findings["latency.gomodcache"].severity is Severity.OK
    assert "over 20 entries" in findings["latency.gomodcache"].found


def test_hung_or_crashing_check_becomes_a_finding(tmp_path: Path) -> None:
    ctx = DoctorContext(workspace=tmp_path, go_env={})
    release = threading.Event()

    def hang(_: DoctorContext) -> list[Finding]:
        release.wait(30)
        return []

    def crash(_: DoctorContext) -> list[Finding]:
        raise RuntimeError("boom")

    try:
        hung = run_check("mounts", hang, ctx, timeout=0.2)
    finally:
        release.set()
    assert [(f.id, f.severity) for f in hung] == [("mounts.timeout", Severity.ERROR)]
    crashed = run_check("latency", crash, ctx, timeout=5)
    assert crashed[0].id == "latency.crashed" and "RuntimeError: boom" in crashed[0].found


# ---------------------------------------------------------------------------- go env, toolchain


def _fake_go(tmp_path: Path, body: str) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text("#!/bin/sh\n" + body)
    go.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}


def test_hanging_go_env_is_a_finding_and_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    env = _fake_go(tmp_path, f"echo $$ > {pidfile}\nexec sleep 60\n")
    ctx = DoctorContext(workspace=tmp_path, go_env={}, environ=env,
                        limits=Limits(subprocess_seconds=1.0))
    go_env, findings = load_go_env(ctx)
    assert go_env is None
    assert [f.id for f in findings] == ["goenv.timeout"]
    assert "GOTOOLCHAIN" in findings[0].why and "go env" in findings[0].fix
    assert not Path(f"/proc/{pidfile.read_text().strip()}").exists()
    assert not ctx.hung  # a slow command is not a dead mount


def test_failing_go_env_reports_its_error(tmp_path: Path) -> None:
    env = _fake_go(tmp_path, "echo 'go: go.mod requires go >= 1.99 (GOTOOLCHAIN=local)' >&2\n"
                             "exit 1\n")
    report = run_doctor(tmp_path, environ=env, checks={"goenv"})
    failed = only(report, "goenv.failed")
    assert "requires go >= 1.99" in failed.found and failed.severity is Severity.ERROR


@pytest.mark.parametrize(("override", "finding_id", "severity"), [
    ({"GOFLAGS": "-mod=vendor"}, "goenv.mod-vendor", Severity.ERROR),
    ({"GOPROXY": "off"}, "goenv.goproxy-off", Severity.WARNING),
    ({"GO111MODULE": "off"}, "goenv.gopath-mode", Severity.WARNING),
    ({"GOWORK": "/nonexistent/go.work"}, "goenv.gowork-missing", Severity.ERROR),
    ({"GOPACKAGESDRIVER": "/nonexistent/driver"}, "goenv.packagesdriver", Severity.ERROR),
    ({"GOPACKAGESDRIVER": "sh"}, "goenv.packagesdriver", Severity.INFO),
    ({"GOMODCACHE": "WS/.gomodcache"}, "goenv.modcache-in-workspace", Severity.WARNING),
])
def test_go_env_sanity(tmp_path: Path, caches: dict[str, str], override: dict[str, str],
                       finding_id: str, severity: Severity) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    go_env = {**caches, **{k: v.replace("WS", str(ws)) for k, v in override.items()}}
    report = run_doctor(ws, go_env=go_env, checks={"goenv"})
    finding = only(report, finding_id)
    assert finding.severity is severity and finding.why and finding.fix
    assert not report.by_id("goenv.ok")


def test_real_toolchain_versions(hello_workspace: Path, real_gopls: Path) -> None:
    go_version = subprocess.run(["go", "version"], capture_output=True, text=True, timeout=30,
                                check=True).stdout
    gopls_version = re.search(r"v\d+\.\d+\.\d+\S*", subprocess.run(
        [str(real_gopls), "version"], capture_output=True, text=True, timeout=30,
        check=True).stdout)
    assert gopls_version

    report = run_doctor(hello_workspace, checks={"toolchain", "goenv"}, gopls=str(real_gopls))

    go = only(report, "toolchain.go")
    assert go.severity is Severity.OK and go.title == go_version.split()[2]
    gopls = only(report, "toolchain.gopls")
    assert gopls.severity is Severity.OK and gopls_version.group() in gopls.title
    assert gopls.path == str(real_gopls)
    assert not report.by_id("goenv.failed") and not report.by_id("goenv.timeout")


# ----------------------------------------------------------------------------- whole command


def test_clean_workspace_exits_zero(hello_workspace: Path, caches: dict[str, str],
                                    environ: dict[str, str]) -> None:
    report = run_doctor(hello_workspace, go_env=caches, environ=environ,
                        mounts_text="/dev/vda / ext4 rw 0 0\n",
                        checks=set(CHECKS) - {"toolchain"})
    assert report.worst in (Severity.OK, Severity.INFO), [f.as_dict() for f in report.findings]
    assert report.exit_code == 0
    assert {f.check for f in report.findings} == set(CHECKS) - {"toolchain"}


def test_json_output_matches_schema(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "go.mod").write_text("module example.com/ws\n\ngo 1.21\n")
    (ws / ".devcontainer.json").write_text(NO_CONSISTENCY)
    (ws / "self").symlink_to(".")

    code = cli_main(["doctor", "--json", "--check", "symlinks", "--check", "devcontainer",
                     str(ws)])

    doc = json.loads(capsys.readouterr().out)
    assert set(doc) == {"version", "workspace", "worst", "findings"}
    assert doc["version"] == 1 and doc["workspace"] == str(ws)
    for f in doc["findings"]:
        assert set(f) == FINDING_KEYS
        assert f["severity"] in SEVERITIES and re.fullmatch(r"[a-z]+\.[a-z0-9-]+", f["id"])
        assert isinstance(f["line"], int | None) and isinstance(f["path"], str | None)
    assert {f["id"] for f in doc["findings"]} == {"symlinks.cycle", "devcontainer.no-consistency"}
    assert doc["worst"] == "error" and code == 2


def test_text_output_says_what_why_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / ".devcontainer.json").write_text(NO_CONSISTENCY)
    code = cli_main(["doctor", "--check", "devcontainer", str(ws)])
    out = capsys.readouterr().out
    assert code == 1
    for label in ("found:", "why:", "fix:", f"at:    {ws / '.devcontainer.json'}:3"):
        assert label in out
    assert out.rstrip().endswith("worst: warning (exit 1)")


def test_cli_knows_every_check() -> None:
    assert list(_CHECK_NAMES) == list(CHECKS)

