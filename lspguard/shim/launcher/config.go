package main

// Which lspguard config file applies, found as lspguard/config/model.py's find_config does:
// $LSPGUARD_CONFIG, else .lspguard.toml in the working directory or its nearest parent with
// one, else the user's config.toml. The launcher reads no TOML: a config that may change what
// it would do (the gopls to run, its arguments or environment, a trace, the debug flag) is
// left to the Python shim, which reads it.

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
)

// Words whose presence in a config file means the launcher's defaults may not hold. Anywhere
// in the file, comments included: a false alarm only costs the Python start it saves.
var configKeysOfTheLauncher = [][]byte{[]byte("backend"), []byte("trace"), []byte("snapshot")}

func isRegularFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// findConfig returns the config file lspguard would read ("" for the built-in defaults), and
// false when it cannot tell as lspguard would (the Python shim then reports it).
func findConfig() (string, bool) {
	cwd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	if given := os.Getenv("LSPGUARD_CONFIG"); given != "" {
		if len(given) > 1 && given[:2] == "~/" {
			given = filepath.Join(os.Getenv("HOME"), given[2:])
		}
		if !filepath.IsAbs(given) {
			given = filepath.Join(cwd, given)
		}
		return given, isRegularFile(given)
	}
	if real, err := filepath.EvalSymlinks(cwd); err == nil {
		cwd = real
	}
	for dir := cwd; ; dir = filepath.Dir(dir) {
		if candidate := filepath.Join(dir, ".lspguard.toml"); isRegularFile(candidate) {
			return candidate, true
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	dir := os.Getenv("LSPGUARD_CONFIG_DIR")
	if dir == "" {
		base, err := os.UserConfigDir()
		if err != nil {
			return "", true
		}
		dir = filepath.Join(base, "lspguard")
	}
	if user := filepath.Join(dir, "config.toml"); isRegularFile(user) {
		return user, true
	}
	return "", true
}

// defaultsHold reports whether the config at path (if any) leaves the launcher's defaults as
// they are: no backend, trace or snapshot settings.
func defaultsHold(path string) bool {
	if path == "" {
		return true
	}
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return false
	}
	for _, word := range configKeysOfTheLauncher {
		if bytes.Contains(text, word) {
			return false
		}
	}
	return true
}
