package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/port/share"
)

// consoleHolding lends url as `mos console` does, recording the hooks.
type consoleHolding struct {
	held port.Port

	mu     sync.Mutex
	events []string
	sums   []share.Summary
}

func holdAndLend(t *testing.T, url string) *consoleHolding {
	t.Helper()
	dir, err := os.MkdirTemp("", "mos-borrow-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("XDG_RUNTIME_DIR", dir)

	p, err := port.OpenDirect(context.Background(), url, port.DefaultBaud)
	if err != nil {
		t.Fatal(err)
	}
	c := &consoleHolding{}
	l, err := share.Offer(context.Background(), p, share.Hooks{
		Name: "mos console (test)",
		OnBorrow: func(b share.Borrower) {
			c.mu.Lock()
			c.events = append(c.events, "borrow "+b.Who)
			c.mu.Unlock()
		},
		OnReturn: func(s share.Summary) {
			c.mu.Lock()
			c.events = append(c.events, "return "+s.Borrower.Who)
			c.sums = append(c.sums, s)
			c.mu.Unlock()
		},
	})
	if err != nil {
		p.Close()
		t.Fatal(err)
	}
	c.held = l.Port()
	t.Cleanup(func() { c.held.Close() })
	return c
}

// returned waits for the n-th OnReturn and gives its summary: the lender
// calls it after the command has closed its end.
func (c *consoleHolding) returned(t *testing.T, n int) share.Summary {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		c.mu.Lock()
		if len(c.sums) >= n {
			s := c.sums[n-1]
			c.mu.Unlock()
			return s
		}
		c.mu.Unlock()
	}
	t.Fatalf("no return number %d; hooks so far %q", n, c.events)
	return share.Summary{}
}

// While `mos console` holds the port, config set, call, put, get and even
// flash go through it, and do what they do on the device.
func TestCommandsThroughConsole(t *testing.T) {
	url, dev := demoDevice(t, "&fast=1")
	c := holdAndLend(t, url)
	// The console's own reader runs throughout.
	stop := make(chan struct{})
	var readerErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 1024)
		c.held.SetReadTimeout(100 * time.Millisecond)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.held.Read(buf); err != nil && !errors.Is(err, port.ErrTimeout) {
				readerErr = err
				return
			}
		}
	}()
	defer func() {
		close(stop)
		wg.Wait()
		if readerErr != nil {
			t.Errorf("the console's reader failed: %v", readerErr)
		}
	}()

	n := 0
	step := func(args ...string) outcome {
		t.Helper()
		r := mos{}.run(t, append([]string{"--port", url}, args...)...)
		if r.code != 0 {
			t.Fatalf("%s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
		if !strings.Contains(r.stderr, "is held by mos console (test): going through it") {
			t.Fatalf("%s: no notice on stderr: %q", strings.Join(args, " "), r.stderr)
		}
		n++
		if s := c.returned(t, n); s.Borrower.Who != "mos "+strings.Join(args[:min(len(args), 2)], " ") &&
			s.Borrower.Who != "mos "+args[0] {
			t.Fatalf("borrower %q for %q", s.Borrower.Who, args)
		}
		return r
	}

	r := step("config", "set", "debug.level=3")
	if !strings.Contains(r.stdout, "saved") {
		t.Fatalf("config set: %q", r.stdout)
	}
	if r = step("config", "get", "debug.level"); r.stdout != "3\n" {
		t.Fatalf("config get after set: %q", r.stdout)
	}
	if r = step("call", "Config.Get", `{"key": "debug.level"}`); strings.TrimSpace(r.stdout) != "3" {
		t.Fatalf("call: %q", r.stdout)
	}
	local := writeFile(t, "notes.txt", []byte("kept open while configuring\n"))
	step("put", local)
	if r = step("get", "notes.txt"); r.stdout != "kept open while configuring\n" {
		t.Fatalf("get: %q", r.stdout)
	}

	// Flash: the bootloader reset, the stub at a higher rate and the hard
	// reset at the end all go through; the bytes land in the device's
	// flash, and the board runs its firmware afterwards with its settings
	// and files kept.
	data := randomData(8192, 3)
	step("flash", "0x300000:"+writeFile(t, "region.bin", data))
	s := c.returned(t, n)
	if s.BootloaderResets < 1 || s.Resets < 2 || len(s.Bauds) < 2 || s.Err != nil {
		t.Fatalf("flash summary %v", s)
	}
	got := make([]byte, len(data))
	dev.Flash().ReadAt(got, 0x300000)
	if !bytes.Equal(got, data) {
		t.Fatal("flash content differs after mos flash through the console")
	}
	if r = step("config", "get", "debug.level"); r.stdout != "3\n" {
		t.Fatalf("config get after flash: %q", r.stdout)
	}
	if r = step("get", "notes.txt"); r.stdout != "kept open while configuring\n" {
		t.Fatalf("file after flash: %q", r.stdout)
	}

	c.mu.Lock()
	events := c.events
	c.mu.Unlock()
	for i := 0; i < len(events); i += 2 {
		b, ret := strings.TrimPrefix(events[i], "borrow "), strings.TrimPrefix(events[i+1], "return ")
		if !strings.HasPrefix(events[i], "borrow ") || !strings.HasPrefix(events[i+1], "return ") || b != ret {
			t.Fatalf("hooks out of order: %q", events)
		}
	}
	for _, s := range c.sums {
		t.Log(s)
	}
	if len(events) != 2*n {
		t.Fatalf("%d hook calls for %d commands: %q", len(events), n, events)
	}
}

// secondProcessEnv makes the test binary run one mos command line (see
// TestAsSecondProcess): a second process, as a second shell would be.
const secondProcessEnv = "MOS_BORROW_TEST_ARGS"

// TestAsSecondProcess is not a test: started by TestCommandFromAnotherProcess
// with secondProcessEnv set, it runs mos with those arguments and exits.
func TestAsSecondProcess(t *testing.T) {
	args := os.Getenv(secondProcessEnv)
	if args == "" {
		return
	}
	os.Exit(run(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
}

// `mos config set` from another process while the console holds the port
// (the demo firmware starts at debug.level 2).
func TestCommandFromAnotherProcess(t *testing.T) {
	url, _ := demoDevice(t, "&fast=1")
	c := holdAndLend(t, url)

	cmd := exec.Command(os.Args[0], "-test.run=^TestAsSecondProcess$")
	cmd.Env = append(os.Environ(), secondProcessEnv+"="+strings.Join([]string{"--port", url, "config", "set", "debug.level=1"}, "\x1f"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mos config set in another process: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), "going through it") || !strings.Contains(stdout.String(), "saved") {
		t.Fatalf("stdout %q stderr %q", stdout.String(), stderr.String())
	}
	s := c.returned(t, 1)
	if s.Borrower.Who != "mos config set" || s.Borrower.PID != cmd.Process.Pid || s.Err != nil {
		t.Fatalf("summary %+v", s)
	}
	// The device has the setting (asked through the console again).
	r := mos{}.run(t, "--port", url, "config", "get", "debug.level")
	if r.code != 0 || r.stdout != "1\n" {
		t.Fatalf("config get: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
}
