// Command invoice-watcher is a hipersync service. It is not built yet: it exits with
// an error so that nothing mistakes it for a running service.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "invoice-watcher: not implemented yet (issue #6)")
	os.Exit(2)
}
