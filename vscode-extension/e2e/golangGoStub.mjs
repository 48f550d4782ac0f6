// The stand-in golang.go of `make test-vscode` (run.mjs, phase 2): what golang.go does with the
// gopls it is given. run.mjs serialises `goStubExtension` into the stand-in's extension.js.

/** The stand-in golang.go's code. buildGoStub writes it into the stand-in's extension.js as
 * `(source)(exports, require("vscode"), ...)` (Function.prototype.toString), so it runs in the
 * extension host with only its parameters and Node's globals in scope (nothing of this module).
 *
 * It does with the configured gopls what golang.go (golang/vscode-go, extension/src) does at
 * activation, and here also whenever go.alternateTools changes and on go.languageserver.restart:
 *   - getBinPath('gopls') (util.ts, utils/pathUtils.ts): go.alternateTools.gopls if it is an
 *     absolute path to an executable file, else the last path found (the cache, which a
 *     go.alternateTools change does not clear), else the name (alternateTools.gopls if relative,
 *     else gopls) in $GOBIN, go.toolsGopath/bin, $GOPATH/bin, $GOROOT/bin, $PATH
 *   - buildLanguageServerConfig → getLocalGoplsVersion (language/goLanguageServer.ts):
 *     `<gopls> version -json` (Main.Version, GoVersion), its fallback `<gopls> version` (run
 *     here every time), with env = process.env + go.toolsEnvVars and cwd = the workspace folder
 *   - suggestUpdates → getGoVersionForInstall → `GOTOOLCHAIN=local go version`, then
 *     listOutdatedTools → inspectGoToolVersion: `go version -m <gopls>`, the first line's
 *     /\s+(go\d+.\d+\S*)/ is goVersion and lines[2].split(/\s+/)[3] the moduleVersion (one
 *     try: a failed command or fewer than 3 lines loses both); outdated if there is no
 *     goVersion or its major.minor is older than `go version`'s (or the same major.minor
 *     from a beta/rc that `go version` does not name), and then the warning "Tools (gopls)
 *     need recompiling to work with <the whole `go version` output>" [Update tools]
 *     (goInstallTools.ts)
 * Each run's findings (every command with its exit code, output and duration in ms, the parses,
 * outdated, the warning shown) go to $LSPGUARD_E2E_GO_STUB_OUT/NNN-<trigger>.json, written to a
 * temporary name and renamed: a file there is complete. */
export function goStubExtension(exports, vscode, cp, fs, path, os) {
  const OUT = process.env.LSPGUARD_E2E_GO_STUB_OUT;
  const MINIMUM_GO_VERSION = [1, 21, 0]; // goInstallTools.ts
  const binPathCache = {}; // utils/pathUtils.ts: only a go.toolsGopath change clears it
  let channel;
  let seq = 0;
  let queue = Promise.resolve();

  const substituteEnv = (s) => s.replace(/\${env:([^}]+)}/g, (_, v) => process.env[v.trim()] || "");
  const resolvePath = (p, folder) => {
    const q = folder ? p.replace(/\${workspaceFolder}|\${workspaceRoot}/g, folder) : p;
    return q.startsWith("~") ? path.join(os.homedir(), q.slice(1)) : q;
  };
  const executableFileExists = (p) => {
    try {
      if (!fs.statSync(p).isFile()) return false;
      fs.accessSync(p, fs.constants.F_OK | fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  const fromEnvVar = (name, value, appendBin) => {
    for (const dir of (value || "").split(path.delimiter).filter(Boolean)) {
      const p = path.join(dir, appendBin ? "bin" : "", name);
      if (executableFileExists(p)) return p;
    }
    return undefined;
  };

  /** getBinPathWithPreferredGopathGorootWithExplanation, for `tool`. */
  function getBinPath(tool, cfg, folder) {
    const alt = (cfg.get("alternateTools") || {})[tool];
    const alternate = typeof alt === "string" && alt ? resolvePath(substituteEnv(alt), folder)
      : undefined;
    if (alternate && path.isAbsolute(alternate) && executableFileExists(alternate)) {
      binPathCache[tool] = alternate;
      return { path: alternate, why: "alternateTool" };
    }
    if (binPathCache[tool]) return { path: binPathCache[tool], why: "cached" };
    const name = alternate && !path.isAbsolute(alternate) ? alternate : tool;
    const found = (p, why) => {
      binPathCache[tool] = p;
      return { path: p, why: name === tool ? why : "alternateTool" };
    };
    let p = fromEnvVar(name, process.env.GOBIN, false);
    if (p) return found(p, "gobin");
    if (tool !== "go") {
      for (const gopath of [cfg.get("toolsGopath"),
                            process.env.GOPATH || path.join(os.homedir(), "go")]) {
        p = typeof gopath === "string" ? fromEnvVar(name, gopath, true) : undefined;
        if (p) return found(p, "gopath");
      }
    }
    p = fromEnvVar(name, process.env.GOROOT, true);
    if (p) return found(p, "goroot");
    p = fromEnvVar(name, process.env.PATH, false);
    if (p) return found(p, "path");
    if (tool === "go") {
      p = ["/usr/local/go/bin/go", "/usr/local/bin/go"].find(executableFileExists);
      return p ? found(p, "default") : { path: "", why: "not found" };
    }
    return { path: tool, why: "not found" };
  }

  /** cp.execFile (as golang.go runs them, promisified: a non-zero exit is a failure), timed. */
  function run(commands, file, args, opts = {}) {
    return new Promise((resolve) => {
      const t0 = process.hrtime.bigint();
      cp.execFile(file, args, { ...opts, timeout: 60_000 }, (err, stdout, stderr) => {
        const r = {
          argv: [file, ...args],
          cwd: opts.cwd ?? null,
          env: opts.env?.GOTOOLCHAIN ? { GOTOOLCHAIN: opts.env.GOTOOLCHAIN } : undefined,
          ok: !err,
          exitCode: err ? (typeof err.code === "number" ? err.code : null) : 0,
          signal: err?.signal ?? null,
          error: err && typeof err.code !== "number" ? String(err.message ?? err) : null,
          stdout: String(stdout ?? ""),
          stderr: String(stderr ?? ""),
          ms: Math.round(Number(process.hrtime.bigint() - t0) / 1e5) / 10,
        };
        commands.push(r);
        resolve(r);
      });
    });
  }

  /** util.ts GoVersion: `go version` output → its parse (sv: [major, minor, patch]). */
  function goVersionOf(text) {
    const rel = /^go version go(\d\.\d+\S*)\s+/.exec(text);
    const dev = /^go version devel go(\d\.\d+\S*)\s+/.exec(text);
    const m = rel && /(\d+)(?:\.(\d+))?(?:\.(\d+))?/.exec(rel[1]); // semver.coerce
    return { version: text, sv: m ? [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)] : null,
             svString: rel?.[1] ?? null, isDevel: !!dev };
  }
  const lt = (a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2];

  async function check(trigger) {
    const t0 = Date.now();
    const cfg = vscode.workspace.getConfiguration("go");
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const commands = [];
    const f = { seq: ++seq, trigger, at: t0, workspaceFolder: folder ?? null,
                alternateToolsGopls: (cfg.get("alternateTools") || {}).gopls ?? null, commands };
    try {
      // toolExecutionEnvironment (goEnv.ts): process.env + go.toolsEnvVars, GOPATH.
      const env = { ...process.env };
      const toolsEnvVars = cfg.get("toolsEnvVars");
      if (toolsEnvVars && typeof toolsEnvVars === "object") {
        for (const [k, v] of Object.entries(toolsEnvVars)) {
          env[k] = typeof v === "string" ? resolvePath(substituteEnv(v), folder) : v;
        }
      }
      const useLanguageServer = cfg.get("useLanguageServer") !== false;
      const gopls = getBinPath("gopls", cfg, folder);
      f.gopls = gopls;
      f.serverCommand = [gopls.path, ...(cfg.get("languageServerFlags") || [])];

      // Language server start: buildLanguageServerConfig → getLocalGoplsVersion.
      f.languageServer = { enabled: useLanguageServer };
      if (useLanguageServer && !path.isAbsolute(gopls.path)) {
        const alt = (cfg.get("alternateTools") || {}).gopls;
        f.languageServer.error = alt ? `Cannot find the alternate tool ${alt} configured for gopls.`
          : "gopls not found (golang.go prompts to install it)";
        if (alt) {
          void vscode.window.showErrorMessage(`${f.languageServer.error}
Please install it and reload this VS Code window.`);
        }
      } else if (useLanguageServer) {
        const vj = await run(commands, gopls.path, ["version", "-json"], { env, cwd: folder });
        let fromJson = null;
        try {
          const v = JSON.parse(vj.stdout);
          f.versionJson = { mainVersion: v?.Main?.Version ?? null, goVersion: v?.GoVersion ?? null };
          if (v?.Main.Version) fromJson = { version: v.Main.Version, goVersion: v.GoVersion };
        } catch (err) {
          f.versionJson = { error: String(err) };
        }
        const vt = await run(commands, gopls.path, ["version"], { env, cwd: folder });
        // The fallback's parse: exactly two lines, the second "module@version ...".
        let fromText = null;
        const lines = vt.stdout.trim().split("\n");
        if (vt.ok && lines.length === 2) {
          const split = lines[1].trim().split(" ")[0].trim().split("@");
          if (split.length >= 2) fromText = { version: split[1] };
        }
        f.versionText = { parsed: fromText, lines: vt.ok ? lines.length : null };
        f.goplsVersion = fromJson ?? fromText; // what golang.go uses (-json first)
        f.goplsVersionFrom = fromJson ? "version -json" : fromText ? "version" : null;
      }

      // suggestUpdates: the Go for tools (go.toolsManagement.go, else go), GOTOOLCHAIN=local.
      const goForInstall = cfg.get("toolsManagement.go");
      const go = goForInstall ? { path: resolvePath(substituteEnv(goForInstall), folder),
                                  why: "toolsManagement.go" } : getBinPath("go", cfg, folder);
      const gv = await run(commands, go.path || "go", ["version"],
                           { env: { ...env, GOTOOLCHAIN: "local" }, cwd: folder });
      const configured = gv.ok ? goVersionOf(gv.stdout) : null;
      f.go = { ...go, version: configured?.svString ?? null, output: gv.stdout.trim() };
      if (!configured || !configured.sv || lt(configured.sv, MINIMUM_GO_VERSION) < 0) {
        f.suggestUpdates = `skipped: no go version, or older than go1.21 (${gv.stdout.trim()})`;
      } else if (!useLanguageServer) {
        f.suggestUpdates = "skipped: go.useLanguageServer is false (gopls is not a required tool)";
      } else if (!path.isAbsolute(gopls.path)) {
        f.suggestUpdates = "skipped: gopls not found";
      } else {
        // inspectGoToolVersion: its own `go` (getBinPath), no env or cwd of its own.
        const goCmd = getBinPath("go", cfg, folder).path;
        const m = await run(commands, goCmd, ["version", "-m", gopls.path]);
        const inspect = { ok: m.ok, goVersion: null, moduleVersion: null, parseError: null };
        if (m.ok) {
          try {
            const lines = m.stdout.split("\n", 3);
            const goVersion = lines[0] && lines[0].match(/\s+(go\d+.\d+\S*)/)?.[1];
            const moduleVersion = lines[2].split(/\s+/)[3];
            inspect.goVersion = goVersion ?? null;
            inspect.moduleVersion = moduleVersion ?? null;
          } catch (err) {
            inspect.parseError = String(err); // golang.go: both lost
          }
        }
        // shouldUpdateTool: a moduleVersion that is no semver ("(devel)") is never updated.
        inspect.moduleVersionIsSemver = /^v?\d+\.\d+\.\d+(-[\w.-]+)?(\+[\w.-]+)?$/
          .test(inspect.moduleVersion ?? "");
        f.goVersionM = inspect;
        const [major, minor] = configured.sv;
        let why = null;
        if (!inspect.goVersion) {
          why = "no Go version from `go version -m` (a failed command, fewer than 3 lines, or " +
                "no goN.N in its first line)";
        } else {
          const tool = goVersionOf(`go version ${inspect.goVersion} os/arch`);
          if (!tool.sv) why = `unparsable Go version ${inspect.goVersion}`;
          else if (major > tool.sv[0] || (major === tool.sv[0] && minor > tool.sv[1])) {
            why = `built with ${inspect.goVersion}, older than go${configured.svString}`;
          } else if (major === tool.sv[0] && minor === tool.sv[1] &&
                     (inspect.goVersion.includes("beta") || inspect.goVersion.includes("rc")) &&
                     !configured.version.includes(inspect.goVersion)) {
            why = `built with the pre-release ${inspect.goVersion}`;
          }
        }
        f.outdated = why !== null;
        f.outdatedReason = why;
        if (f.outdated) {
          const tm = cfg.get("toolsManagement");
          if (tm && tm.autoUpdate === true) {
            f.suggestUpdates = "would reinstall gopls silently (go.toolsManagement.autoUpdate)";
          } else {
            f.warning = `Tools (gopls) need recompiling to work with ${configured.version}`;
            void vscode.window.showWarningMessage(f.warning, "Update tools").then((choice) => {
              channel?.appendLine(`[${trigger} #${f.seq}] warning answered: ${choice ?? "(closed)"}`);
            });
          }
        }
      }
    } catch (err) {
      f.error = String(err?.stack ?? err);
    }
    f.totalMs = Date.now() - t0;
    channel?.appendLine(`[${trigger} #${f.seq}] gopls ${f.gopls?.path} (${f.gopls?.why}): ` +
                        `version ${JSON.stringify(f.goplsVersion)}, go version -m ${
                          JSON.stringify(f.goVersionM)}, outdated ${f.outdated}${
                          f.error ? `, error ${f.error}` : ""}`);
    if (OUT) {
      fs.mkdirSync(OUT, { recursive: true });
      const file = path.join(OUT, `${String(f.seq).padStart(3, "0")}-${trigger}.json`);
      fs.writeFileSync(`${file}.tmp`, JSON.stringify(f, null, 2));
      fs.renameSync(`${file}.tmp`, file);
    }
  }

  const enqueue = (trigger) => {
    queue = queue.then(() => check(trigger));
    return queue;
  };

  exports.activate = (context) => {
    channel = vscode.window.createOutputChannel("Go (lspguard e2e stand-in)");
    context.subscriptions.push(
      channel,
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration("go.alternateTools")) void enqueue("config-change");
      }),
      vscode.commands.registerCommand("go.languageserver.restart", () => enqueue("restart")),
    );
    void enqueue("activation");
  };
  exports.deactivate = () => undefined;
}
