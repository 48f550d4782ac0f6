module lspguard/gopls-shim

// The oldest Go whose binaries carry the build info `go version -m` reads; no requirements:
// the launcher is built from the standard library alone, offline, with the user's toolchain.
go 1.18
