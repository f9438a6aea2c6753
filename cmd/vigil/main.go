// Command vigil is the one binary of the Vigil perimeter system:
// `vigil edge`, `vigil central`, `vigil demo`, `vigil sim camera`.
package main

import (
	"os"

	"github.com/vigil-perimeter/vigil/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
