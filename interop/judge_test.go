package interop_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/sim"
)

// needNode returns the node binary, or skips (fails on CI) when Node or
// the npm package a judge needs is missing. file is a path under
// node_modules that exists once the package is installed.
func needNode(t *testing.T, judge, pkg, file string) string {
	t.Helper()
	hint := "run `make interop-deps` (npm ci in interop/node) to install the pinned " + pkg
	missing := func(why string) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s judge unavailable: %s; %s", judge, why, hint)
		}
		t.Skipf("%s judge unavailable: %s; %s", judge, why, hint)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node is not on PATH")
	}
	if _, err := os.Stat(filepath.Join(judgeDir, "node_modules", pkg, file)); err != nil {
		missing(filepath.Join("interop", judgeDir, "node_modules") + " has no " + pkg)
	}
	return node
}

// serveRFC2217 serves dev over RFC 2217 on a loopback port until the test
// ends, and returns its address.
func serveRFC2217(t *testing.T, dev *sim.Device) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := dev.ServeRFC2217(ctx, ln); err != nil {
			t.Errorf("ServeRFC2217: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return ln.Addr().String()
}

// judgeRun is one run of a Node judge script.
type judgeRun struct {
	stdout, stderr bytes.Buffer
	elapsed        time.Duration
}

// runJudgeScript runs node with args (plus --trace when MOS_JUDGE_TRACE
// is set) and decodes its JSON summary into res. The test fails, with the
// judge's stderr, when the script does not run, prints no summary, or
// passed reports false; failure then says what the judge found.
func runJudgeScript(t *testing.T, node string, args []string, timeout time.Duration, res any, passed func() bool, failure func(*judgeRun) string) *judgeRun {
	t.Helper()
	trace := os.Getenv("MOS_JUDGE_TRACE") != ""
	if trace {
		args = append(args, "--trace")
	}
	ctx, stop := context.WithTimeout(context.Background(), timeout)
	defer stop()
	cmd := exec.CommandContext(ctx, node, args...)
	run := &judgeRun{}
	cmd.Stdout, cmd.Stderr = &run.stdout, &run.stderr
	start := time.Now()
	runErr := cmd.Run()
	run.elapsed = time.Since(start)
	if trace {
		t.Logf("judge stderr:\n%s", run.stderr.String())
	}
	jsonErr := json.Unmarshal(run.stdout.Bytes(), res)
	if runErr == nil && jsonErr == nil && passed() {
		return run
	}
	t.Logf("judge stderr:\n%s", tail(run.stderr.String(), 60))
	if jsonErr != nil {
		t.Fatalf("judge: %v; no JSON summary (%v); stdout: %q", runErr, jsonErr, tail(run.stdout.String(), 5))
	}
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		t.Fatalf("judge: %v", runErr)
	}
	t.Fatal(failure(run))
	return nil
}
