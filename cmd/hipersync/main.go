// Command hipersync is the operator CLI. Its commands arrive with the issues
// that build the services behind them; until then it says so.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "hipersync: the operator CLI is not implemented yet (issue #7)")
	os.Exit(2)
}
