package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// icountShift is the emulator's -icount shift: each emulated instruction
// takes 2^shift ns of virtual time. It sets how fast the emulated CPU is
// compared with the UART and timers, and both directions matter (measured
// on a loaded 2-core machine with a 64 KiB `mos flash`, which uploads the
// stub to the ROM at 921600 baud):
//   - too slow a CPU drops bytes the way a real ROM would not: with shift 9
//     (2 MIPS) the ROM lost bytes of every stub upload (MEM_DATA answered
//     01 07, bad checksum); with shift 7 (7.8 MIPS) it did now and then.
//   - too fast a CPU spends many host instructions on the ROM's and the
//     stub's timed waits: with shift 4 (62.5 MIPS, start.sh's default) a
//     reset took 4 to 9 s to the ROM's banner and a stub write ran past
//     mos's 3 s block timeout.
//
// Shift 5 (31 MIPS) is near the ESP32 ROM's own speed (the CPU runs from
// the 40 MHz crystal in download mode): 5 of 5 writes passed, about 4 s
// each with the reset.
const icountShift = "5"

var (
	toolDir   string // holds the mos binary built for these tests
	buildOnce sync.Once
	mosBin    string
	buildErr  error
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mos-emulator-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	toolDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// moduleRoot is the folder holding go.mod, found upwards from the test's
// working directory (the package folder).
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			t.Fatal("go.mod not found above the test's folder")
		}
		dir = up
	}
}

// unavailable skips the test, or fails it in CI, where the emulator tier
// is required.
func unavailable(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true: the ESP32 emulator tier is required)", msg)
	}
	t.Skipf("%s: skipping the ESP32 emulator tier", msg)
}

// emulatorDir is the emulator's folder: MOS_ESP32_EMULATOR, else
// ../shared/emulators/esp32 next to the checkout.
func emulatorDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("MOS_ESP32_EMULATOR")
	if dir == "" {
		dir = filepath.Join(moduleRoot(t), "..", "shared", "emulators", "esp32")
	}
	if _, err := os.Stat(filepath.Join(dir, "start.sh")); err != nil {
		unavailable(t, "no ESP32 emulator at %s (set MOS_ESP32_EMULATOR to its folder)", dir)
	}
	return dir
}

// mos builds the mos binary once for all tests and returns its path.
func mos(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		mosBin = filepath.Join(toolDir, "mos")
		cmd := exec.Command(goTool, "build", "-buildvcs=false", "-o", mosBin, "./cmd/mos")
		cmd.Dir = moduleRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("building mos: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return mosBin
}

// emu is one running emulator instance.
type emu struct {
	dir             string // the emulator's folder
	work            string // this instance's flash.bin, efuse.bin, qemu.log
	serial, monitor int
	pid             int
}

// freePorts returns n loopback ports nobody listens on right now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// start runs the emulator with its flash and eFuse images in work, booting
// into boot ("download" or "flash"). It is stopped when the test ends.
func start(t *testing.T, work, boot string) *emu {
	t.Helper()
	e := &emu{dir: emulatorDir(t), work: work}
	ports := freePorts(t, 2)
	e.serial, e.monitor = ports[0], ports[1]
	cmd := exec.Command(filepath.Join(e.dir, "start.sh"), "-w", work,
		"-s", strconv.Itoa(e.serial), "-m", strconv.Itoa(e.monitor), "-b", boot, "-i", icountShift)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		unavailable(t, "the ESP32 emulator did not start: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	e.pid, err = strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("start.sh printed %q, not a process id", out)
	}
	t.Cleanup(e.stop)
	if boot == "download" {
		e.resetReady(t)
	}
	return e
}

// alive reports whether the emulator process still runs (a zombie left
// for init to reap does not count).
func (e *emu) alive() bool {
	if syscall.Kill(e.pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", e.pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// state is the field after "(comm)"
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

// stop ends the emulator: TERM, then KILL if it lingers.
func (e *emu) stop() {
	if e.pid == 0 {
		return
	}
	_ = syscall.Kill(e.pid, syscall.SIGTERM)
	for deadline := time.Now().Add(5 * time.Second); e.alive() && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	if e.alive() {
		_ = syscall.Kill(e.pid, syscall.SIGKILL)
	}
	e.pid = 0
}

// port is the UART's address for mos.
func (e *emu) port() string { return fmt.Sprintf("socket://127.0.0.1:%d", e.serial) }

// reset presses EN through the QEMU monitor, as the emulator's reset.sh
// does: the chip restarts with the strapping chosen at start.
func (e *emu) reset(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", e.monitor), 5*time.Second)
	if err != nil {
		t.Fatalf("emulator monitor: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("system_reset\n")); err != nil {
		t.Fatalf("emulator monitor: %v", err)
	}
	// the monitor echoes the command once it has run it
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var seen []byte
	buf := make([]byte, 512)
	for !bytes.Contains(seen, []byte("system_reset")) {
		n, err := c.Read(buf)
		seen = append(seen, buf[:n]...)
		if err != nil {
			t.Fatalf("emulator monitor: no echo of system_reset (%v): %q", err, seen)
		}
	}
}

// resetReady resets the chip and waits for the ROM's banner, so that what
// runs next finds the ROM loader up. The emulated ROM takes from a fraction
// of a second to several on a busy machine to get there (a real chip takes
// milliseconds); mos's own retries are not meant to cover that.
func (e *emu) resetReady(t *testing.T) {
	t.Helper()
	con := e.listen(t)
	e.reset(t)
	out, ok := con.waitFor("boot:0x", time.Minute)
	con.close()
	if !ok {
		t.Fatalf("no ROM banner within a minute of the reset: %q", out)
	}
}

// flash reads n bytes of the emulator's flash image at addr.
func (e *emu) flash(t *testing.T, addr, n int) []byte {
	t.Helper()
	f, err := os.Open(filepath.Join(e.work, "flash.bin"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, n)
	if _, err := f.ReadAt(b, int64(addr)); err != nil {
		t.Fatal(err)
	}
	return b
}

// result is what `mos --json` prints.
type result struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// run runs mos with args and returns its stdout and stderr.
func run(t *testing.T, ctx context.Context, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mos(t), args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// runJSON runs mos --json with args, requires success and decodes the
// result into v.
func runJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	stdout, stderr, err := run(t, context.Background(), append([]string{"--json"}, args...)...)
	if err != nil {
		t.Fatalf("mos %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	var r result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("mos %s: output is not JSON (%v): %s", strings.Join(args, " "), err, stdout)
	}
	if v != nil {
		if err := json.Unmarshal(r.Result, v); err != nil {
			t.Fatalf("mos %s: result %s: %v", strings.Join(args, " "), r.Result, err)
		}
	}
	// Connecting must not have needed the by-hand fallback.
	if strings.Contains(stderr, "did not answer") {
		t.Fatalf("mos %s connected only after the manual-entry wait:\n%s", strings.Join(args, " "), stderr)
	}
}

// console collects what the chip prints on its UART.
type console struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	c    net.Conn
	done chan struct{}
}

// close disconnects from the UART (the emulator takes one client at a time).
func (con *console) close() {
	con.c.Close()
	<-con.done
}

// listen connects to the emulator's UART and records its output until the
// test ends.
func (e *emu) listen(t *testing.T) *console {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", e.serial), 5*time.Second)
	if err != nil {
		t.Fatalf("emulator UART: %v", err)
	}
	con := &console{c: c, done: make(chan struct{})}
	go func() {
		defer close(con.done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			con.mu.Lock()
			con.buf.Write(buf[:n])
			con.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(con.close)
	return con
}

// waitFor waits until the output contains s, or d passes.
func (con *console) waitFor(s string, d time.Duration) (string, bool) {
	for deadline := time.Now().Add(d); ; {
		con.mu.Lock()
		out := con.buf.String()
		con.mu.Unlock()
		if strings.Contains(out, s) {
			return out, true
		}
		if time.Now().After(deadline) {
			return out, false
		}
		time.Sleep(20 * time.Millisecond)
	}
}
