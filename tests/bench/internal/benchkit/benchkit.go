// Package benchkit holds what the load generators of tests/bench
// (proxyload, presignbench) share: the command dispatch, the blobs
// `proxyload gen` writes, HTTP requests and checks, a SigV4 S3 client
// (PUT, HEAD, multipart, emptying a bucket) and the /proc counters the
// benchmarks report.
package benchkit

import (
	"fmt"
	"os"
)

// Main runs the command os.Args[1] names (one of cmds) with the remaining
// arguments. An error, an unknown command or none: "TOOL: message" on
// stderr and exit status 1; usage lists the commands ("gen|run|clean").
func Main(tool, usage string, cmds map[string]func(args []string) error) {
	if len(os.Args) < 2 {
		Fatalf(tool, "usage: %s %s [flags]", tool, usage)
	}
	cmd, ok := cmds[os.Args[1]]
	if !ok {
		Fatalf(tool, "unknown command %q", os.Args[1])
	}
	if err := cmd(os.Args[2:]); err != nil {
		Fatalf(tool, "%v", err)
	}
}

// Fatalf prints "TOOL: message" on stderr and exits with status 1.
func Fatalf(tool, format string, a ...any) {
	fmt.Fprintf(os.Stderr, tool+": "+format+"\n", a...)
	os.Exit(1)
}
