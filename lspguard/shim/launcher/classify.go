package main

// How gopls reads its command line: an LSP session on stdio, or another gopls command?
// The same rule as lspguard/shim/gopls_args.py (tests/system/test_shim_native.py runs both over one
// corpus): gopls v0.21.1's flag tables, parsed the way Go's flag package does.

import (
	"strconv"
	"strings"
	"time"
)

type flagKind int

const (
	kindString flagKind = iota
	kindInt
	kindDuration
)

var serveValueFlags = map[string]flagKind{
	"debug": kindString, "listen": kindString, "listen.timeout": kindDuration,
	"logfile": kindString, "mcp.listen": kindString, "mode": kindString, "port": kindInt,
	"remote.debug": kindString, "remote.listen.timeout": kindDuration,
	"remote.logfile": kindString,
}

var serveBoolFlags = map[string]bool{"rpc.trace": true}

var appOnlyValueFlags = map[string]flagKind{
	"remote": kindString, "profile.alloc": kindString, "profile.block": kindString,
	"profile.cpu": kindString, "profile.mem": kindString, "profile.trace": kindString,
	"ocagent": kindString,
}

var appOnlyBoolFlags = map[string]bool{"v": true, "verbose": true, "vv": true, "veryverbose": true}

var subcommands = map[string]bool{}

func init() {
	for _, name := range strings.Fields(`serve version bug help api-json licenses
		call_hierarchy check codeaction codelens definition execute fix folding_ranges format mcp
		highlight implementation imports remote inspect links prepare_rename references rename
		semtok signature stats symbols workspace_symbol vulncheck workspace`) {
		subcommands[name] = true
	}
}

// classification is the launcher's verdict on a command line.
type classification struct {
	LSP    bool   `json:"lsp"`
	Reason string `json:"reason"`
}

type parse struct {
	values map[string]string
	err    string // set when gopls itself would reject the command line
}

func (p *parse) valueKind(name string, serve bool) (flagKind, bool) {
	if k, ok := serveValueFlags[name]; ok {
		return k, true
	}
	if !serve {
		k, ok := appOnlyValueFlags[name]
		return k, ok
	}
	return 0, false
}

func (p *parse) isBool(name string, serve bool) bool {
	return serveBoolFlags[name] || (!serve && appOnlyBoolFlags[name])
}

func validValue(kind flagKind, value string) bool {
	switch kind {
	case kindInt:
		_, err := strconv.ParseInt(value, 0, 64)
		return err == nil
	case kindDuration:
		_, err := time.ParseDuration(value)
		return err == nil
	}
	return true
}

// flags consumes flags from args[i:] and returns the index of the first positional argument.
func (p *parse) flags(args []string, i int, serve bool) int {
	for i < len(args) {
		arg := args[i]
		if len(arg) < 2 || arg[0] != '-' {
			return i
		}
		if arg == "--" {
			return i + 1
		}
		dashes := 1
		if arg[1] == '-' {
			dashes = 2
		}
		body := arg[dashes:]
		if body == "" || body[0] == '-' || body[0] == '=' {
			p.err = "bad flag syntax: " + arg
			return i
		}
		i++
		name, value, eq := strings.Cut(body, "=")
		if name == "h" || name == "help" {
			p.err = arg + " asks for help"
			return i
		}
		if p.isBool(name, serve) {
			if _, err := strconv.ParseBool(value); eq && err != nil {
				p.err = "invalid boolean value " + strconv.Quote(value) + " for -" + name
				return i
			}
			continue
		}
		if kind, ok := p.valueKind(name, serve); ok {
			if !eq {
				if i >= len(args) {
					p.err = "flag needs an argument: -" + name
					return i
				}
				value = args[i]
				i++
			}
			if !validValue(kind, value) {
				p.err = "invalid value " + strconv.Quote(value) + " for flag -" + name
				return i
			}
			p.values[name] = value
			continue
		}
		_, appOnlyValue := appOnlyValueFlags[name]
		if serve && (appOnlyValue || appOnlyBoolFlags[name]) {
			p.err = "-" + name + " is a global flag; gopls rejects it after 'serve'"
			return i
		}
		// A flag this table does not know: a following word that is neither a flag nor a
		// known subcommand is taken as its value (as the Python rule does).
		if !eq && i < len(args) && !strings.HasPrefix(args[i], "-") && !subcommands[args[i]] {
			i++
		}
	}
	return i
}

// classify decides whether `gopls args` is an LSP stdio session (guard it) or not (exec gopls).
func classify(args []string) classification {
	p := &parse{values: map[string]string{}}
	i := p.flags(args, 0, false)
	if p.err == "" && i < len(args) {
		sub := args[i]
		if sub != "serve" {
			return classification{false, "subcommand " + strconv.Quote(sub)}
		}
		i = p.flags(args, i+1, true)
		if p.err == "" && i < len(args) {
			return classification{false, "'serve' takes no arguments"}
		}
	}
	if p.err != "" {
		return classification{false, p.err}
	}
	if listen := p.values["listen"]; listen != "" {
		return classification{false, "-listen: a daemon, not a stdio session"}
	}
	if port, err := strconv.ParseInt(p.values["port"], 0, 64); err == nil && port != 0 {
		return classification{false, "-port: a daemon, not a stdio session"}
	}
	if mode, ok := p.values["mode"]; ok && mode != "stdio" {
		return classification{false, "-mode is not stdio"}
	}
	return classification{true, "LSP session on stdio"}
}
