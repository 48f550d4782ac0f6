//go:build !linux

package main

// spawnEarly does nothing off Linux: the Python shim spawns gopls (it needs a pidfd to adopt).
func spawnEarly(info *launched, argv []string, env []string) {}
