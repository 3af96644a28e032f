// Command token-broker is a hipersync service. It is not built yet: it exits with
// an error so that nothing mistakes it for a running service.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "token-broker: not implemented yet (issue #3)")
	os.Exit(2)
}
