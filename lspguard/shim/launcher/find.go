package main

// Finding the real gopls, as lspguard/shim/main.py's find_real_gopls does for the cases the
// launcher handles itself: $LSPGUARD_GOPLS, then PATH, $GOBIN, each $GOPATH/bin, ~/go/bin.
// Every candidate that is this launcher (same file) or any lspguard shim is skipped, so the
// shim, itself named gopls and on PATH, never execs itself. Anything unusual (a loop, nothing
// found) is left to the Python shim, which explains it.

import (
	"bytes"
	"debug/buildinfo"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// shimModule is this program's module path: `go version -m` shows it, and it is how any
// lspguard (Go or Python) tells a native shim from the real gopls.
const shimModule = "lspguard/gopls-shim"

// A native shim is a couple of MiB; a real gopls is over 20. Larger files are not opened.
const maxShimSize = 16 << 20

var scriptMarker = []byte("# lspguard-shim")

// isShim reports whether path is an lspguard shim: a script with the marker line in its first
// 512 bytes, or a small Go binary whose main module is shimModule.
func isShim(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		return false
	}
	head := make([]byte, 512)
	n, _ := f.Read(head)
	for _, line := range bytes.Split(head[:n], []byte("\n")) {
		if bytes.Equal(bytes.TrimSpace(line), scriptMarker) {
			return true
		}
	}
	if st.Size() > maxShimSize {
		return false
	}
	info, err := buildinfo.Read(f)
	return err == nil && info.Path == shimModule
}

func sameFile(a, b string) bool {
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

func isExecutableFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && syscall.Access(path, 1) == nil // X_OK
}

func fallbackDirs() []string {
	var dirs []string
	if gobin := os.Getenv("GOBIN"); gobin != "" {
		dirs = append(dirs, gobin)
	}
	if gopath := os.Getenv("GOPATH"); gopath != "" {
		for _, p := range filepath.SplitList(gopath) {
			if p != "" {
				dirs = append(dirs, filepath.Join(p, "bin"))
			}
		}
	} else if home := os.Getenv("HOME"); home != "" {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	return dirs
}

func pathDirs() []string {
	path, ok := os.LookupEnv("PATH")
	if !ok {
		path = "/bin:/usr/bin"
	}
	return strings.Split(path, string(os.PathListSeparator))
}

// search returns the first executable `name` in dirs that is neither self nor a shim.
func search(name string, dirs []string, self string) (string, bool) {
	seen := map[string]bool{}
	for _, d := range dirs {
		if d == "" {
			d = "."
		}
		candidate, err := filepath.Abs(filepath.Join(d, name))
		if err != nil {
			continue
		}
		real, err := filepath.EvalSymlinks(candidate)
		if err != nil {
			real = candidate
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		if !isExecutableFile(candidate) {
			continue
		}
		if sameFile(candidate, self) || isShim(candidate) {
			continue
		}
		return candidate, true
	}
	return "", false
}

// findRealGopls resolves the real gopls; false leaves the case to the Python shim.
func findRealGopls(self string) (string, bool) {
	if value := os.Getenv("LSPGUARD_GOPLS"); value != "" {
		if !strings.ContainsRune(value, os.PathSeparator) {
			return search(value, pathDirs(), self)
		}
		if strings.HasPrefix(value, "~/") {
			value = filepath.Join(os.Getenv("HOME"), value[2:])
		}
		path, err := filepath.Abs(value)
		if err != nil || !isExecutableFile(path) || sameFile(path, self) || isShim(path) {
			return "", false
		}
		return path, true
	}
	return search("gopls", append(pathDirs(), fallbackDirs()...), self)
}
