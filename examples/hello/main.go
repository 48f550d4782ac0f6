// Command hello prints a greeting; lspguard's demo opens it in a scripted editor session.
package main

import (
	"fmt"

	"example.com/hello/greet"
)

func main() {
	fmt.Println("👋", greet.Hello("gopher"))
}
