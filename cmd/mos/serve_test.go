package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/mos-tool/mos/output"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/sim"
)

// startServe runs `mos serve --json` with args until the test ends and
// returns the RFC 2217 address it printed, and its stderr.
func startServe(t *testing.T, args ...string) (addr string, stderr func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		a := newApp(stdout, errb)
		a.getenv = func(string) string { return "" }
		done <- execute(ctx, a, append([]string{"--json"}, args...))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d after Ctrl-C\n%s", code, errb.String())
			}
		case <-time.After(5 * time.Second):
			t.Error("serve did not stop on Ctrl-C")
		}
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		var res struct {
			Result serveResult `json:"result"`
		}
		if json.NewDecoder(strings.NewReader(stdout.String())).Decode(&res) == nil && res.Result.RFC2217 != "" {
			return res.Result.RFC2217, errb.String
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no address: %q %q", stdout.String(), errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// `mos flash` and `mos chip-info` through both kinds of server, with the
// device behind `mos serve --port sim://...`; the bytes are checked on the
// device's flash.
func TestServeFlashThroughServer(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
	}{
		{"esp", nil},
		{"plain", []string{"--plain"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			id := "serve-flash-" + tt.name
			addr, stderr := startServe(t, append([]string{"serve", "--port", "sim://esp32?fast=1&id=" + id, "--listen", "127.0.0.1:0"}, tt.args...)...)

			r := mos{}.run(t, "--port", addr, "chip-info")
			if r.code != 0 || !strings.Contains(r.stdout, "ESP32") {
				t.Fatalf("chip-info through the server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			img := bytes.Repeat([]byte("served image "), 2000)
			file := filepath.Join(t.TempDir(), "app.bin")
			if err := os.WriteFile(file, img, 0o644); err != nil {
				t.Fatal(err)
			}
			r = mos{}.run(t, "--port", addr, "flash", "0x10000:"+file)
			if r.code != 0 {
				t.Fatalf("flash through the server: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			got := make([]byte, len(img))
			if err := sim.Shared(id).Flash().ReadAt(got, 0x10000); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, img) {
				t.Error("the device's flash does not hold the image written through the server")
			}
			if log := stderr(); strings.Count(log, "connected") < 2 {
				t.Errorf("the server logged %q, want each client's connection", log)
			}
		})
	}
}

func TestServeUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no port", []string{"serve"}, "--port"},
		{"nothing to serve", []string{"--port", "sim://esp32", "serve", "--listen", ""}, "--listen"},
		{"bad raw baud", []string{"--port", "sim://esp32", "serve", "--raw-baud", "0"}, "--raw-baud"},
		{"zero reset delay", []string{"--port", "sim://esp32", "serve", "--reset-delay", "0"}, "--reset-delay"},
		{"sim: bad chip", []string{"sim", "serve", "--chip", "esp99"}, "esp99"},
		{"sim: bad board", []string{"sim", "serve", "--board", "breadboard"}, "breadboard"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{}.run(t, tt.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want usage error naming %s", r.code, r.stderr, tt.want)
			}
		})
	}
}

// A raw TCP port has no reset lines: mos says how to enter download mode
// by hand before anything else, and plays no reset sequence it cannot make.
func TestSocketPortAsksForManualReset(t *testing.T) {
	for _, tt := range []struct {
		name     string
		download string // the virtual board powered on in download mode
		code     int
	}{
		{"board in download mode", "1", 0},
		{"board running its app", "0", output.ExitNoAnswer},
	} {
		t.Run(tt.name, func(t *testing.T) {
			raw := startServeRaw(t, "sim://esp32?fast=1&download="+tt.download+"&id=socket-"+tt.download)
			r := mos{}.run(t, "-v", "--port", raw, "--timeout", "300ms", "chip-info")
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			first := strings.SplitN(r.stderr, "\n", 2)[0]
			if !strings.Contains(first, "cannot reset the board (no DTR/RTS lines): put it into download mode by hand") {
				t.Errorf("first line %q", first)
			}
			if strings.Contains(r.stderr, "resetting into download mode") {
				t.Errorf("played a reset sequence on a port without lines:\n%s", r.stderr)
			}
		})
	}
}

// startServeRaw runs `mos serve` with a raw TCP listener and returns its
// address.
func startServeRaw(t *testing.T, port string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		a := newApp(stdout, &syncBuffer{})
		a.getenv = func(string) string { return "" }
		execute(ctx, a, []string{"--json", "serve", "--port", port, "--listen", "127.0.0.1:0", "--listen-raw", "127.0.0.1:0"})
	}()
	t.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var res struct {
			Result serveResult `json:"result"`
		}
		if json.NewDecoder(strings.NewReader(stdout.String())).Decode(&res) == nil && res.Result.Raw != "" {
			return res.Result.Raw
		}
	}
	t.Fatalf("serve printed no raw address: %q", stdout.String())
	return ""
}
