package tmuxtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"
)

// repoRoot is two levels up from this package.
func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// needTmux returns tmux's path; without it the test skips, or fails in CI
// (.ci/run installs it).
func needTmux(t *testing.T) string {
	p, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("tmux is needed for the console's end-to-end test and is not installed: %v", err)
		}
		t.Skipf("tmux not installed (apt-get install tmux): %v", err)
	}
	return p
}

func buildMos(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "mos")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/mos")
	cmd.Dir = repoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// server is `mos sim serve` on a fixed address; stop and start model the
// board being unplugged and plugged back in (the flash file keeps the
// firmware, as a board's flash does).
type server struct {
	t     *testing.T
	bin   string
	addr  string
	flash string
	cmd   *exec.Cmd
	log   *os.File
	chip  string // "": esp32
}

func (s *server) start() {
	s.t.Helper()
	chip := s.chip
	if chip == "" {
		chip = "esp32"
	}
	s.cmd = exec.Command(s.bin, "sim", "serve", "--chip", chip, "--flash-file", s.flash, "--listen", s.addr)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", s.addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("mos sim serve did not listen on %s", s.addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
}

// term is one tmux server with one window running the console.
type term struct {
	t    *testing.T
	tmux string
	sock string
}

func (tm *term) run(args ...string) string {
	tm.t.Helper()
	out, err := exec.Command(tm.tmux, append([]string{"-L", tm.sock}, args...)...).CombinedOutput()
	if err != nil {
		tm.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (tm *term) screen() string { return tm.run("capture-pane", "-p", "-t", "0") }

// keys types text literally; named keys (Enter, Escape, End) go one by one.
func (tm *term) keys(ks ...string) {
	for _, k := range ks {
		switch k {
		case "Enter", "Escape", "End", "Up":
			tm.run("send-keys", "-t", "0", k)
		default:
			tm.run("send-keys", "-t", "0", "-l", k)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// waitFor polls the screen until cond holds.
func (tm *term) waitFor(what string, timeout time.Duration, cond func(screen string) bool) string {
	tm.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := tm.screen()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			tm.t.Fatalf("waiting for %s: the screen is\n%s", what, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func contains(sub string) func(string) bool {
	return func(s string) bool { return strings.Contains(s, sub) }
}

// lastRow is the status bar.
func lastRow(s string) string {
	rows := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return rows[len(rows)-1]
}

var banner = regexp.MustCompile(`rst:0x1 \(POWERON_RESET\)`)

func TestConsoleInTmux(t *testing.T) {
	tmux := needTmux(t)
	bin := buildMos(t)
	dir := t.TempDir()
	flash := filepath.Join(dir, "esp32.flash")

	// The demo firmware, flashed in-process into the file the server uses.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fl := exec.CommandContext(ctx, bin, "--port", "sim://esp32?fast=1&flash-file="+flash, "flash",
		filepath.Join(repoRoot(t), "firmware-images", "esp32-demo.zip"))
	if out, err := fl.CombinedOutput(); err != nil {
		t.Fatalf("mos flash: %v\n%s", err, out)
	}

	for _, size := range []struct{ w, h int }{{120, 30}, {50, 24}} {
		t.Run(fmt.Sprintf("%dx%d", size.w, size.h), func(t *testing.T) {
			log, err := os.Create(filepath.Join(dir, fmt.Sprintf("serve-%d.log", size.w)))
			if err != nil {
				t.Fatal(err)
			}
			defer log.Close()
			srv := &server{t: t, bin: bin, addr: freeAddr(t), flash: flash, log: log}
			srv.start()
			defer srv.stop()

			tm := &term{t: t, tmux: tmux, sock: fmt.Sprintf("mos-console-test-%d-%d", os.Getpid(), size.w)}
			consoleLog := filepath.Join(dir, fmt.Sprintf("console-%d.log", size.w))
			tm.run("new-session", "-d", "-x", fmt.Sprint(size.w), "-y", fmt.Sprint(size.h),
				fmt.Sprintf("%s console --port rfc2217://%s --log-file %s; sleep 30", bin, srv.addr, consoleLog))
			defer exec.Command(tmux, "-L", tm.sock, "kill-server").Run()

			// The boot log appears: the server powers the board on when it
			// starts, and mos serve holds the line until a client comes, so
			// connect, then reset to see a whole boot.
			tm.waitFor("the console to connect", 10*time.Second, func(s string) bool {
				return strings.Contains(lastRow(s), srv.addr) && !strings.Contains(lastRow(s), "connecting")
			})
			tm.keys("R")
			tm.waitFor("the boot log", 15*time.Second, contains("Init done"))
			time.Sleep(time.Second) // the end of any boot still arriving
			tm.keys("End")

			// Search finds a line: it is highlighted at the bottom of the
			// view and following stops.
			tm.keys("/", "MAC:", "Enter")
			s := tm.waitFor("the search result", 5*time.Second, func(s string) bool {
				return strings.Contains(lastRow(s), "/MAC:") && strings.Contains(lastRow(s), "PAUSED")
			})
			if !strings.Contains(s, "MAC: 24:0a:c4") {
				t.Fatalf("search did not show the MAC line:\n%s", s)
			}
			tm.keys("End", "Escape")

			// A line sent from the input line reaches the firmware: an RPC
			// request, whose reply frame is hidden from the log (counted in
			// the status bar) until p shows it pretty-printed.
			tm.keys("i", `{"id":5,"method":"Sys.GetInfo"}`, "Enter")
			if size.w >= 80 {
				s = tm.waitFor("the hidden RPC reply", 10*time.Second, func(s string) bool {
					return strings.Contains(lastRow(s), "1 RPC hidden")
				})
			} else {
				// A narrow status bar leaves the count out: give the
				// reply time to arrive instead.
				time.Sleep(time.Second)
				s = tm.screen()
			}
			if strings.Contains(s, `"result"`) {
				t.Fatalf("the RPC reply is shown although frames are hidden:\n%s", s)
			}
			tm.keys("p")
			tm.waitFor("the RPC reply pretty-printed", 5*time.Second, contains(`"ap_ip": "192.168.4.1"`))
			tm.keys("p")

			// A second shell's mos command for the same port goes through
			// the running console (its local endpoint) instead of finding
			// the port busy, and the console notes what it did.
			cs := exec.CommandContext(ctx, bin, "--port", "rfc2217://"+srv.addr, "config", "set", "debug.level=2")
			if out, err := cs.CombinedOutput(); err != nil || !strings.Contains(string(out), "going through it") {
				t.Fatalf("mos config set while the console runs: %v\n%s", err, out)
			}
			tm.waitFor("the console's note of the borrowed line", 10*time.Second, contains("--- mos config set"))
			tm.keys("End")

			// The reset key reboots the board: its banner appears again.
			tm.keys("f", "rst:0x1", "Enter")
			before := len(banner.FindAllString(tm.screen(), -1))
			if before == 0 {
				t.Fatalf("no boot banner on screen before the reset:\n%s", tm.screen())
			}
			tm.keys("R")
			tm.waitFor("a second boot banner", 10*time.Second, func(s string) bool {
				return len(banner.FindAllString(s, -1)) > before
			})
			tm.keys("Escape")

			// Unplugged (the server gone) and back: the console says so and
			// reconnects by itself, scrollback kept. The view is filtered
			// to boot banners and the console's marks, so that the marks
			// stay on screen whatever the device prints.
			tm.keys("F", `rst:0x1|^--- `, "Enter")
			srv.stop()
			tm.waitFor("the loss to show", 10*time.Second, func(s string) bool {
				return strings.Contains(lastRow(s), "reconnecting")
			})
			srv.start()
			s = tm.waitFor("the reconnection", 15*time.Second, func(s string) bool {
				return strings.Contains(s, "--- reconnected") && !strings.Contains(lastRow(s), "reconnecting")
			})
			// The port works again: a reset shows a new boot after the mark.
			before = len(banner.FindAllString(s, -1))
			tm.keys("R")
			s = tm.waitFor("a boot after reconnecting", 15*time.Second, func(s string) bool {
				i := strings.LastIndex(s, "--- reconnected")
				return i >= 0 && banner.MatchString(s[i:]) && len(banner.FindAllString(s, -1)) > before
			})
			// The scrollback was kept: the boots from before the loss are
			// still above its mark.
			// (A narrow terminal wraps the loss mark's text, so only its
			// start is looked for.)
			if i := strings.Index(s, "--- the port"); i < 0 || len(banner.FindAllString(s[:i], -1)) < 2 {
				t.Errorf("the boots before the loss are gone from the scrollback:\n%s", s)
			}
			tm.keys("Escape")

			// Rows never run past the terminal's width.
			for _, row := range strings.Split(tm.screen(), "\n") {
				if n := len([]rune(row)); n > size.w {
					t.Errorf("row of %d columns on a %d-column terminal: %q", n, size.w, row)
				}
			}

			tm.keys("q")
			logged, err := os.ReadFile(consoleLog)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(logged), "Init done") {
				t.Errorf("the log file lacks the boot log:\n%s", logged)
			}
		})
	}
}
