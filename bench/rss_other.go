//go:build !unix

package main

import "os"

// maxRSS: this platform's rusage has no peak RSS.
func maxRSS(*os.ProcessState) (int64, bool) { return 0, false }
