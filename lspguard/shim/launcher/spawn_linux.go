package main

import (
	"os"
	"syscall"
)

const fSetPipeSize = 1031 // F_SETPIPE_SZ
const pipeSize = 1 << 20  // as lspguard/proxy/early.py: a large message crosses in few wake-ups

func isPipeOrSocket(fd int) bool {
	var st syscall.Stat_t
	if syscall.Fstat(fd, &st) != nil {
		return false
	}
	kind := st.Mode & syscall.S_IFMT
	return kind == syscall.S_IFIFO || kind == syscall.S_IFSOCK
}

// spawnEarly starts gopls now on three new pipes, in its own process group and with
// PDEATHSIG, exactly as lspguard/proxy/early.py's spawn_first would, and records it in info
// for the Python shim to adopt. Not done (info unchanged) unless the editor's stdin and stdout
// are pipes or sockets, or when anything fails: Python then spawns gopls itself.
func spawnEarly(info *launched, argv []string, env []string) {
	if !isPipeOrSocket(0) || !isPipeOrSocket(1) {
		return
	}
	var pipes [3][2]int // stdin, stdout, stderr; [0] is the read end
	for i := range pipes {
		if err := syscall.Pipe2(pipes[i][:], syscall.O_CLOEXEC); err != nil {
			for _, p := range pipes[:i] {
				syscall.Close(p[0])
				syscall.Close(p[1])
			}
			return
		}
	}
	ours := []int{pipes[0][1], pipes[1][0], pipes[2][0]}
	theirs := []int{pipes[0][0], pipes[1][1], pipes[2][1]}
	for _, fd := range ours[:2] {
		syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), fSetPipeSize, pipeSize)
	}
	files := make([]*os.File, 3)
	for i, fd := range theirs {
		files[i] = os.NewFile(uintptr(fd), "gopls-stdio")
	}
	proc, err := os.StartProcess(argv[0], argv, &os.ProcAttr{Env: env, Files: files,
		Sys: &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}})
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		for _, fd := range ours {
			syscall.Close(fd)
		}
		return
	}
	for _, fd := range ours { // kept across the exec into Python (and only ours: after the spawn)
		syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_SETFD, 0)
	}
	info.Pid, info.Argv = proc.Pid, argv
	info.Stdin, info.Stdout, info.Stderr = ours[0], ours[1], ours[2]
}
