// Package greet builds the greetings that the hello command prints.
package greet

// Hello returns a friendly greeting for name.
//
// It is the function lspguard's demo hovers over and jumps to.
func Hello(name string) string {
	return "Hello, " + name + "!"
}
