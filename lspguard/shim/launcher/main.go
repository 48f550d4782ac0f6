// Command gopls is lspguard's gopls shim: what go.alternateTools.gopls points at.
//
// `lspguard install-shim` builds it from this directory with the user's own Go toolchain, so
// `go version -m` on it reports that toolchain, as VS Code Go checks at every start. It does
// only what needs no Python, and leaves everything else to the Python shim
// (lspguard/shim/main.py) by exec'ing it in the same process:
//
//   - any command but an LSP session (`version`, `bug`, `stats`, `check`, ...): exec the real
//     gopls directly, as fast as running gopls;
//   - an LSP session on stdio pipes: spawn the real gopls at once, then exec Python, which
//     adopts it (it is Python's child: same pid) and relays the editor's `initialize` to it
//     while it starts up;
//   - anything unusual (a config that sets the backend, a trace or the debug flag; no gopls
//     found; a shim loop; not Linux): exec Python with nothing done, which explains or handles
//     it as before.
//
// Standard library only; no network. The values below are set by the build (-ldflags -X).
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

var (
	python          string // the interpreter that runs the guard (lspguard's sys.executable)
	sourceRoot      string // the directory holding the lspguard package, if it is not installed
	pinnedConfig    string // LSPGUARD_CONFIG unless the environment sets one (install-shim --config)
	lspguardVersion string // the lspguard that built this shim
)

const (
	depthEnv    = "LSPGUARD_SHIM_DEPTH" // nested shim runs, as the Python shim counts them
	maxDepth    = 8
	launcherEnv = "LSPGUARD_LAUNCHER"          // what the launcher did, for the Python shim (JSON)
	selftestEnv = "LSPGUARD_LAUNCHER_SELFTEST" // "info" or "classify": for lspguard, not gopls
	debugFlag   = "-debug=127.0.0.1:0"
)

// launched is what the Python shim is told (lspguard/proxy/launched.py reads it).
type launched struct {
	V       int      `json:"v"`
	Shim    string   `json:"shim"`    // this executable: never taken for the real gopls
	Version string   `json:"version"` // lspguardVersion
	Go      string   `json:"go"`      // the toolchain that built it
	Pid     int      `json:"pid,omitempty"`
	Stdin   int      `json:"stdin,omitempty"`  // our end of gopls's stdin
	Stdout  int      `json:"stdout,omitempty"` // our end of gopls's stdout
	Stderr  int      `json:"stderr,omitempty"` // our end of gopls's stderr
	Argv    []string `json:"argv,omitempty"`
}

func init() {
	// Fork gopls and exec Python from the same (main) thread: gopls's PDEATHSIG follows the
	// thread that forked it, and exec ends every other thread.
	runtime.LockOSThread()
}

func main() {
	args := os.Args[1:]
	switch os.Getenv(selftestEnv) {
	case "info": // for `lspguard doctor`: what this shim was built from
		out, _ := json.Marshal(map[string]string{"version": lspguardVersion, "go": runtime.Version(),
			"python": python, "source_root": sourceRoot, "config": pinnedConfig})
		fmt.Println(string(out))
		return
	case "classify": // for tests: this launcher's reading of a command line
		out, _ := json.Marshal(classify(args))
		fmt.Println(string(out))
		return
	}
	self, err := os.Executable()
	if err != nil {
		self = os.Args[0]
	}
	if pinnedConfig != "" && os.Getenv("LSPGUARD_CONFIG") == "" {
		os.Setenv("LSPGUARD_CONFIG", pinnedConfig)
	}
	info := launched{V: 1, Shim: self, Version: lspguardVersion, Go: runtime.Version()}
	depth, _ := strconv.Atoi(os.Getenv(depthEnv))
	config, known := findConfig()
	if depth >= maxDepth || !known || !defaultsHold(config) {
		runGuard(info)
	}
	real, found := findRealGopls(self)
	if !found {
		runGuard(info)
	}
	env := withEnv(os.Environ(), depthEnv, strconv.Itoa(depth+1))
	if !classify(args).LSP {
		syscall.Exec(real, append([]string{real}, args...), env)
		runGuard(info) // it could not be run: the Python shim says why
	}
	spawnEarly(&info, withDebug(append([]string{real}, args...)), env)
	runGuard(info)
}

// withDebug gives gopls a loopback debug server (goroutine dumps for incident bundles) unless
// -debug is set, as lspguard/proxy/early.py's with_gopls_debug does.
func withDebug(argv []string) []string {
	if !strings.Contains(filepath.Base(argv[0]), "gopls") {
		return argv
	}
	for _, arg := range argv[1:] {
		name, _, _ := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if name == "debug" {
			return argv
		}
	}
	return append([]string{argv[0], debugFlag}, argv[1:]...)
}

func withEnv(env []string, name, value string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return append(out, name+"="+value)
}

// runGuard execs the Python shim in this process, telling it what was done. It never returns.
func runGuard(info launched) {
	payload, _ := json.Marshal(info)
	env := withEnv(os.Environ(), launcherEnv, string(payload))
	bootstrap := "import sys\n" +
		"try:\n    from lspguard.shim.main import main\n" +
		"except ImportError:\n    sys.path.append(" + strconv.Quote(sourceRoot) + ")\n" +
		"    from lspguard.shim.main import main\n" +
		"raise SystemExit(main())\n"
	argv := append([]string{python, "-c", bootstrap}, os.Args[1:]...)
	err := syscall.Exec(python, argv, env)
	fmt.Fprintf(os.Stderr, "lspguard: the gopls shim cannot run lspguard's Python %s (%v): "+
		"reinstall the shim with `lspguard install-shim`\n", python, err)
	os.Exit(127) // a gopls spawned early dies with us (PDEATHSIG)
}
