package endpoint

import (
	"bufio"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestCanonical(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "ttyUSB0")
	if err := os.WriteFile(dev, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "by-id-link")
	if err := os.Symlink(dev, link); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dev)
	for _, tt := range []struct{ in, want string }{
		{dev, real},
		{"serial://" + dev, real},
		{link, real},
		{" " + link + " ", real},
		{"rfc2217://Lab.Example:4000", "rfc2217://lab.example:4000"},
		{"RFC2217://lab:4000", "rfc2217://lab:4000"},
		{"socket://Lab:23", "socket://lab:23"},
		// Options of the virtual device keep their case (flash-file paths).
		{"sim://esp32?flash-file=/tmp/A.bin", "sim://esp32?flash-file=/tmp/A.bin"},
	} {
		if got := Canonical(tt.in); got != tt.want {
			t.Errorf("Canonical(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPathPrivateAndStable(t *testing.T) {
	run := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", run)
	a, err := Path("/dev/ttyUSB0", true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Path("serial:///dev/ttyUSB0", true)
	c, _ := Path("/dev/ttyUSB1", true)
	if a != b || a == c || filepath.Dir(a) != filepath.Join(run, "mos") || len(a) > 100 {
		t.Fatalf("paths %q %q %q", a, b, c)
	}
	if runtime.GOOS == "windows" {
		return
	}
	fi, err := os.Stat(filepath.Dir(a))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("directory %v %v", fi, err)
	}
	// A directory others may enter is refused: they could plant a socket.
	os.Chmod(filepath.Dir(a), 0o755)
	if _, err := Path("/dev/ttyUSB0", true); err == nil || !strings.Contains(err.Error(), "open to other users") {
		t.Fatalf("open directory accepted: %v", err)
	}
}

// Without $XDG_RUNTIME_DIR the endpoints go to a directory of the user's
// own in the temporary directory.
func TestPathWithoutRuntimeDir(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	p, err := Path("/dev/ttyUSB0", true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(p, tmp+string(filepath.Separator)+"mos-") {
		t.Fatalf("path %q not under %q", p, tmp)
	}
}

// A borrower only looks: it creates no directory.
func TestPathBorrowerCreatesNothing(t *testing.T) {
	run := t.TempDir()
	t.Setenv("XDG_RUNTIME_DIR", run)
	if _, err := Path("/dev/ttyUSB0", false); err == nil {
		t.Fatal("a path without the directory")
	}
	if _, err := os.Lstat(filepath.Join(run, "mos")); !os.IsNotExist(err) {
		t.Fatalf("directory made by a borrower: %v", err)
	}
}

func TestDialNoEndpoint(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name string
		make func(path string)
	}{
		{"missing", func(string) {}},
		{"regular file left alone", func(p string) { os.WriteFile(p, []byte("x"), 0o600) }},
	} {
		path := filepath.Join(dir, tt.name+".sock")
		tt.make(path)
		before, _ := os.ReadFile(path)
		conn, ok, err := Dial(path)
		if conn != nil || ok || err != nil {
			t.Errorf("%s: %v %v %v", tt.name, conn, ok, err)
		}
		if after, _ := os.ReadFile(path); string(after) != string(before) {
			t.Errorf("%s: file changed", tt.name)
		}
	}
}

func TestHelloRoundTrip(t *testing.T) {
	h := Hello{Port: "/dev/tty\tUSB0", PID: 42, Who: "mos config\nset"}
	got, err := ReadHello(bufio.NewReader(strings.NewReader(h.Line())))
	if err != nil || got != (Hello{Port: "/dev/tty USB0", PID: 42, Who: "mos config set"}) {
		t.Fatalf("%+v %v", got, err)
	}
	if _, err := ReadHello(bufio.NewReader(strings.NewReader("GET / HTTP/1.0\r\n"))); err == nil {
		t.Fatal("a stranger's line was taken for a greeting")
	}
	long := Greeting + "\tx\t1\t" + strings.Repeat("a", 10000) + "\n"
	if _, err := ReadHello(bufio.NewReader(strings.NewReader(long))); err == nil {
		t.Fatal("an endless line was accepted")
	}
	kind, text, err := ReadReply(bufio.NewReader(strings.NewReader(Reply(ReplyBusy, "in use\nby x"))))
	if err != nil || kind != ReplyBusy || text != "in use by x" {
		t.Fatalf("reply %q %q %v", kind, text, err)
	}
}
