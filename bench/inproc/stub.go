//go:build !torch

// Command inproc needs the libtorch build: go build -modfile=.build/go.torch.mod -tags torch ./bench/inproc
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "inproc: built without libtorch; build with -modfile=.build/go.torch.mod -tags torch")
	os.Exit(2)
}
