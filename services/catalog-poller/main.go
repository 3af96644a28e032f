// Command catalog-poller is a hipersync service. It is not built yet: it exits with
// an error so that nothing mistakes it for a running service.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "catalog-poller: not implemented yet (issue #4)")
	os.Exit(2)
}
