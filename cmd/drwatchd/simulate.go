package main

import (
	"fmt"
	"io"
)

func cmdSimulate(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "drwatchd simulate: not available in this build yet")
	return 2
}

func cmdDrill(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "drwatchd drill: not available in this build yet")
	return 2
}
