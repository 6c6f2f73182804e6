//go:build linux

package port

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"go.bug.st/serial"
)

// openPTY returns a pseudo-terminal: the master, and the slave's path. The
// test's own slave descriptor is closed so only the port under test holds it.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, slave, err := pty.Open()
	if err != nil {
		skipOrFail(t, "no pseudo-terminals here: %v", err)
	}
	path := slave.Name()
	slave.Close()
	t.Cleanup(func() { master.Close() })
	return master, path
}

func openTestSerial(t *testing.T, path string) Port {
	t.Helper()
	p, err := openSerial(path, DefaultBaud)
	if err != nil {
		t.Fatalf("openSerial(%s): %v", path, err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// wantKind fails unless err is a *Error of the given kind.
func wantKind(t *testing.T, err error, kind ErrorKind) *Error {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *port.Error", err, err)
	}
	if pe.Kind != kind {
		t.Fatalf("error %q: kind %d, want %d", err, pe.Kind, kind)
	}
	return pe
}

// skipOrFail skips, except in CI, where a test that cannot do its job fails.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("cannot run in CI: "+format, args...)
	}
	t.Skipf(format, args...)
}

func TestSerialErrorKind(t *testing.T) {
	tests := []struct {
		name string
		op   string
		err  error
		want ErrorKind
	}{
		{"ENOENT", "open", syscall.ENOENT, KindNotFound},
		{"ENODEV", "open", syscall.ENODEV, KindNotFound},
		{"ENXIO", "open", syscall.ENXIO, KindNotFound},
		{"EIO at open", "open", syscall.EIO, KindNotFound},
		{"EBUSY", "open", syscall.EBUSY, KindBusy},
		{"EWOULDBLOCK from flock", "open", fmt.Errorf("locked by another process: %w", syscall.EWOULDBLOCK), KindBusy},
		{"EACCES", "open", syscall.EACCES, KindPermission},
		{"EPERM", "open", syscall.EPERM, KindPermission},
		{"PathError", "open", &os.PathError{Op: "open", Path: "/dev/x", Err: syscall.EACCES}, KindPermission},
		{"fs.ErrNotExist", "open", os.ErrNotExist, KindNotFound},
		{"EIO on read", "read", syscall.EIO, KindDisconnected},
		{"EIO on write", "write", syscall.EIO, KindDisconnected},
		{"ENODEV on write", "write", syscall.ENODEV, KindDisconnected},
		{"EACCES on read", "read", syscall.EACCES, KindPermission},
		{"fs.ErrNotExist on read", "read", fmt.Errorf("x: %w", os.ErrNotExist), KindOther},
		{"ENOTTY", "read", syscall.ENOTTY, KindOther},
		{"plain error", "open", errors.New("boom"), KindOther},
		{"hang-up", "read", errHangUp, KindDisconnected},
		// PortError's fields are unexported: its zero value has code PortBusy.
		{"*serial.PortError", "open", &serial.PortError{}, KindBusy},
		{"serial.PortError", "open", serial.PortError{}, KindBusy},
		{"wrapped *serial.PortError", "read", fmt.Errorf("x: %w", &serial.PortError{}), KindBusy},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := serialErrorKind(tc.op, tc.err); got != tc.want {
				t.Errorf("serialErrorKind(%q, %v) = %d, want %d", tc.op, tc.err, got, tc.want)
			}
		})
	}

	codes := []struct {
		code serial.PortErrorCode
		want ErrorKind
	}{
		{serial.PortNotFound, KindNotFound},
		{serial.PortBusy, KindBusy},
		{serial.PermissionDenied, KindPermission},
		{serial.InvalidSerialPort, KindBadAddress},
		{serial.PortClosed, KindDisconnected},
		{serial.InvalidSpeed, KindOther},
		{serial.FunctionNotImplemented, KindOther},
	}
	for _, tc := range codes {
		if got := serialCodeKind(tc.code); got != tc.want {
			t.Errorf("serialCodeKind(%v) = %d, want %d", tc.code, got, tc.want)
		}
	}
}

func TestOpenSerialNotFound(t *testing.T) {
	_, err := openSerial("/dev/does-not-exist", DefaultBaud)
	pe := wantKind(t, err, KindNotFound)
	if !strings.Contains(pe.Hint(), "mos ports") {
		t.Errorf("hint %q does not mention `mos ports`", pe.Hint())
	}
	if pe.Port != "/dev/does-not-exist" || pe.Op != "open" {
		t.Errorf("error names %q %q, want open /dev/does-not-exist", pe.Op, pe.Port)
	}
	// Linux: open(2) fails with ENOENT.
	if !errors.Is(err, syscall.ENOENT) {
		t.Errorf("error %v does not wrap ENOENT", err)
	}
}

func TestOpenSerialNotATTY(t *testing.T) {
	// A regular file opens, but is no serial port.
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	_, err := openSerial(path, DefaultBaud)
	wantKind(t, err, KindBadAddress)
}

func TestOpenSerialBusy(t *testing.T) {
	_, path := openPTY(t)
	first := openTestSerial(t, path)

	_, err := openSerial(path, DefaultBaud)
	wantKind(t, err, KindBusy)
	t.Logf("second open: %v", err)
	// As root TIOCEXCL is ignored, so this is the flock's EWOULDBLOCK; as
	// another user the kernel refuses the open itself with EBUSY.
	if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EBUSY) {
		t.Errorf("busy error %v wraps neither EWOULDBLOCK nor EBUSY", err)
	}

	// Close releases the lock.
	if err := first.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	second, err := openSerial(path, DefaultBaud)
	if err != nil {
		t.Fatalf("reopen after close: %v", err)
	}
	second.Close()
}

// permChildEnv selects the child mode of TestOpenSerialPermission: the value
// is the path to open.
const permChildEnv = "MOS_PORT_TEST_OPEN_AS_CHILD"

func TestOpenSerialPermission(t *testing.T) {
	if path := os.Getenv(permChildEnv); path != "" {
		// Child, running as an unprivileged user: report what open says.
		_, err := openSerial(path, DefaultBaud)
		var pe *Error
		if errors.As(err, &pe) {
			fmt.Printf("MOS_KIND=%d %v\n", pe.Kind, err)
		} else {
			fmt.Printf("MOS_KIND=none %v\n", err)
		}
		return
	}

	if os.Geteuid() != 0 {
		path := filepath.Join(t.TempDir(), "tty")
		if err := os.WriteFile(path, nil, 0o000); err != nil {
			t.Fatal(err)
		}
		_, err := openSerial(path, DefaultBaud)
		wantKind(t, err, KindPermission)
		return
	}

	// Root bypasses permission checks: open a root-owned 0600 pty slave as
	// nobody (65534) from a copy of this test binary.
	_, path := openPTY(t)
	if err := os.Chown(path, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	out := runAsNobody(t, path, "-test.run=^TestOpenSerialPermission$")
	line := ""
	for sc := bufio.NewScanner(strings.NewReader(out)); sc.Scan(); {
		if strings.HasPrefix(sc.Text(), "MOS_KIND=") {
			line = sc.Text()
		}
	}
	if line == "" {
		t.Fatalf("child printed no result:\n%s", out)
	}
	t.Logf("child: %s", line)
	kind, _, _ := strings.Cut(strings.TrimPrefix(line, "MOS_KIND="), " ")
	if kind != strconv.Itoa(int(KindPermission)) {
		t.Fatalf("child got %s, want kind %d (permission)", line, KindPermission)
	}
}

// runAsNobody runs a copy of the test binary as uid/gid 65534 with
// permChildEnv set to path and returns its output. The copy lives in a world-readable directory because the build
// directory of the original is private to root.
func runAsNobody(t *testing.T, path string, args ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		skipOrFail(t, "cannot find the test binary: %v", err)
	}
	dir, err := os.MkdirTemp("", "mos-port-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "port.test")
	if err := copyFile(bin, exe, 0o755); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{permChildEnv + "=" + path, "HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			// Could not start it at all (no CAP_SETUID, noexec tmp, ...).
			skipOrFail(t, "cannot run the test binary as uid 65534: %v", err)
		}
		t.Fatalf("child failed: %v\n%s", err, out)
	}
	return string(out)
}

func copyFile(dst, src string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode) // past the umask
}

func TestSerialReadTimeoutAndData(t *testing.T) {
	master, path := openPTY(t)
	p := openTestSerial(t, path)

	if got := p.Name(); got != path {
		t.Errorf("Name() = %q, want %q", got, path)
	}
	if err := p.SetReadTimeout(50 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	start := time.Now()
	n, err := p.Read(buf)
	if n != 0 || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Read on an idle line = %d, %v; want 0, ErrTimeout", n, err)
	}
	if d := time.Since(start); d < 40*time.Millisecond || d > 2*time.Second {
		t.Errorf("timed out after %v, want about 50ms", d)
	}

	// Device to host.
	if _, err := master.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := p.SetReadTimeout(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	got := readN(t, p, 5)
	if got != "hello" {
		t.Errorf("read %q, want %q", got, "hello")
	}

	// Host to device: the port is raw, so the bytes arrive unchanged
	// (no echo, no CR/LF mapping).
	if n, err := p.Write([]byte("ab\r\n")); n != 4 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if err := p.Drain(); err != nil {
		t.Errorf("Drain: %v", err)
	}
	mbuf := make([]byte, 4)
	master.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(master, mbuf); err != nil || string(mbuf) != "ab\r\n" {
		t.Errorf("master read %q, %v; want %q", mbuf, err, "ab\r\n")
	}

	// Discarded input is not read.
	if _, err := master.Write([]byte("stale")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the bytes reach the slave's buffer
	if err := p.ResetInputBuffer(); err != nil {
		t.Fatalf("ResetInputBuffer: %v", err)
	}
	p.SetReadTimeout(50 * time.Millisecond)
	if n, err := p.Read(buf); !errors.Is(err, ErrTimeout) {
		t.Errorf("Read after ResetInputBuffer = %q, %v; want ErrTimeout", buf[:n], err)
	}

	if err := p.SetBaudRate(921600); err != nil {
		t.Fatalf("SetBaudRate: %v", err)
	}
	if got := p.BaudRate(); got != 921600 {
		t.Errorf("BaudRate() = %d, want 921600", got)
	}

	// A pty has no modem lines: the TIOCMGET/TIOCMSET ioctls fail.
	for name, set := range map[string]func(bool) error{"SetDTR": p.SetDTR, "SetRTS": p.SetRTS} {
		err := set(true)
		if !errors.Is(err, ErrNoControlLines) {
			t.Errorf("%s on a pty = %v, want ErrNoControlLines", name, err)
		} else {
			t.Logf("%s on a pty: %v", name, err)
		}
	}
}

func readN(t *testing.T, p Port, n int) string {
	t.Helper()
	var got []byte
	buf := make([]byte, n)
	for len(got) < n {
		m, err := p.Read(buf[:n-len(got)])
		if err != nil {
			t.Fatalf("Read after %q: %v", got, err)
		}
		got = append(got, buf[:m]...)
	}
	return string(got)
}

// TestSerialDisconnect closes the pty master under a blocked Read, which is
// what unplugging a USB bridge looks like to the reader. On Linux the slave
// is hung up: select reports it readable and read returns 0 bytes, which
// go.bug.st/serial turns into PortClosed and we into KindDisconnected
// wrapping errHangUp. Writes then fail with EIO, also KindDisconnected.
func TestSerialDisconnect(t *testing.T) {
	master, path := openPTY(t)
	p := openTestSerial(t, path)
	p.SetReadTimeout(5 * time.Second)

	errc := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 16))
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond) // let Read block
	master.Close()

	var err error
	select {
	case err = <-errc:
	case <-time.After(3 * time.Second):
		t.Fatal("Read did not return after the master closed")
	}
	t.Logf("Read after hang-up: %v", err)
	if errors.Is(err, ErrTimeout) {
		t.Fatalf("Read after hang-up timed out instead of failing")
	}
	pe := wantKind(t, err, KindDisconnected)
	if !errors.Is(err, errHangUp) {
		t.Errorf("Read after hang-up = %v, want it to wrap errHangUp", err)
	}
	if pe.Op != "read" {
		t.Errorf("Op = %q, want read", pe.Op)
	}

	// Writes to a hung-up tty fail with EIO.
	_, err = p.Write([]byte("x"))
	t.Logf("Write after hang-up: %v", err)
	wantKind(t, err, KindDisconnected)
	if !errors.Is(err, syscall.EIO) {
		t.Errorf("Write after hang-up = %v, want EIO", err)
	}
}

func TestSerialClosed(t *testing.T) {
	_, path := openPTY(t)
	p, err := openSerial(path, DefaultBaud)
	if err != nil {
		t.Fatal(err)
	}
	p.SetReadTimeout(0) // forever: only Close can end the Read

	errc := make(chan error, 1)
	go func() {
		_, err := p.Read(make([]byte, 16))
		errc <- err
	}()
	time.Sleep(100 * time.Millisecond)
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Read interrupted by Close = %v, want ErrClosed", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not end the blocked Read")
	}

	if _, err := p.Read(make([]byte, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v, want ErrClosed", err)
	}
	if _, err := p.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close = %v, want ErrClosed", err)
	}
	if err := p.SetDTR(true); !errors.Is(err, ErrClosed) {
		t.Errorf("SetDTR after Close = %v, want ErrClosed", err)
	}
	if err := p.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v, want ErrClosed", err)
	}
}
