package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/output"
)

func TestPutLsGetRm(t *testing.T) {
	url := fastDemo(t)
	text := writeFile(t, "hello.txt", []byte("hello, device\n"))
	r := mos{}.run(t, "--port", url, "put", text)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "hello.txt: 14 bytes written") {
		t.Fatalf("put: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	bin := randomData(5000, 7)
	r = mos{}.run(t, "--port", url, "put", writeFile(t, "x.bin", bin), "data.bin", "--json")
	if r.code != 0 || oneJSON(t, r.stdout)["result"].(map[string]any)["size"] != 5000.0 {
		t.Fatalf("put --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	r = mos{}.run(t, "--port", url, "ls")
	if r.code != 0 || r.stdout != "data.bin\nhello.txt\n" {
		t.Fatalf("ls: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "ls", "-l")
	if r.code != 0 || !strings.Contains(r.stdout, "5000  data.bin") || !strings.Contains(r.stdout, "14  hello.txt") {
		t.Fatalf("ls -l: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "ls", "-l", "--json")
	files := oneJSON(t, r.stdout)["result"].([]any)
	if len(files) != 2 || files[0].(map[string]any)["size"] != 5000.0 {
		t.Fatalf("ls -l --json: %v", files)
	}

	// To stdout, to a file, and as JSON.
	r = mos{}.run(t, "--port", url, "get", "hello.txt")
	if r.code != 0 || r.stdout != "hello, device\n" {
		t.Fatalf("get: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	local := filepath.Join(t.TempDir(), "back.bin")
	r = mos{}.run(t, "--port", url, "get", "data.bin", local)
	back, _ := os.ReadFile(local)
	if r.code != 0 || !bytes.Equal(back, bin) {
		t.Fatalf("get FILE LOCAL: exit %d %s", r.code, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "get", "hello.txt", "--json")
	if res := oneJSON(t, r.stdout)["result"].(map[string]any); res["content"] != "hello, device\n" {
		t.Fatalf("get --json: %v", res)
	}
	r = mos{}.run(t, "--port", url, "get", "missing.txt", "--json")
	if r.code != output.ExitDeviceError {
		t.Fatalf("get missing: exit %d %s", r.code, r.stdout)
	}

	r = mos{}.run(t, "--port", url, "rm", "hello.txt")
	if r.code != 0 || r.stdout != "hello.txt: removed\n" {
		t.Fatalf("rm: exit %d %q %s", r.code, r.stdout, r.stderr)
	}
	r = mos{}.run(t, "--port", url, "ls", "--json")
	if names := oneJSON(t, r.stdout)["result"].([]any); len(names) != 1 || names[0] != "data.bin" {
		t.Fatalf("ls after rm: %v", names)
	}
	r = mos{}.run(t, "--port", url, "rm", "hello.txt")
	if r.code != output.ExitDeviceError {
		t.Fatalf("rm again: exit %d %s", r.code, r.stderr)
	}
}

// The demo's file system partition is 512 KiB; all but two sectors (its
// journal) hold files. A 256 KiB file goes there and back byte for byte,
// then a file filling the rest; then it is full, and the next put says so
// before sending data.
func TestPutGetWholeFileSystem(t *testing.T) {
	url := fastDemo(t)
	r := mos{}.run(t, "--port", url, "info", "--json")
	free := int(oneJSON(t, r.stdout)["result"].(map[string]any)["fs_free"].(float64))
	if free < 256<<10 {
		t.Fatalf("only %d bytes free", free)
	}
	quarter := randomData(256<<10, 7)
	if r := (mos{}).run(t, "--port", url, "put", writeFile(t, "q.bin", quarter)); r.code != 0 {
		t.Fatalf("put 256 KiB: exit %d %s", r.code, r.stderr)
	}
	qback := filepath.Join(t.TempDir(), "q.back")
	if r := (mos{}).run(t, "--port", url, "get", "q.bin", qback); r.code != 0 {
		t.Fatalf("get 256 KiB: exit %d %s", r.code, r.stderr)
	}
	if got, _ := os.ReadFile(qback); !bytes.Equal(got, quarter) {
		t.Fatalf("256 KiB file came back different (%d bytes)", len(got))
	}
	free -= 256 << 10
	data := randomData(free, 8)
	r = mos{}.run(t, "--port", url, "put", writeFile(t, "big.bin", data))
	if r.code != 0 {
		t.Fatalf("put %d bytes: exit %d %s", free, r.code, r.stderr)
	}
	local := filepath.Join(t.TempDir(), "big.back")
	r = mos{}.run(t, "--port", url, "get", "big.bin", local)
	back, _ := os.ReadFile(local)
	if r.code != 0 || !bytes.Equal(back, data) {
		t.Fatalf("get: exit %d, %d bytes back, equal %v", r.code, len(back), bytes.Equal(back, data))
	}
	r = mos{}.run(t, "--port", url, "put", writeFile(t, "one.txt", []byte("1")), "--json")
	e := oneJSON(t, r.stdout)["error"].(map[string]any)
	if r.code != output.ExitDeviceError || !strings.Contains(e["message"].(string), "not enough space on the device: 1 bytes needed, 0 free") ||
		!strings.Contains(e["hint"].(string), "mos rm") {
		t.Fatalf("full fs: exit %d %v", r.code, e)
	}
}

// A reset while a file is being uploaded (here: into the ROM loader, so
// the firmware does not come back) fails the command, and the file never
// appears under its name, in real time at 115200 baud.
func TestPutResetMidway(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time transfer")
	}
	url, dev := demoDevice(t, "")
	data := randomData(20<<10, 9)
	file := writeFile(t, "up.bin", data)
	var wg sync.WaitGroup
	wg.Go(func() {
		// Once about a third of the file has reached the device, reset it.
		start, deadline := dev.UARTStats().Received, time.Now().Add(10*time.Second)
		for dev.UARTStats().Received < start+10<<10 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		dev.PressReset(true)
	})
	r := mos{}.run(t, "--port", url, "--timeout", "2s", "put", file, "--json")
	wg.Wait()
	if r.code != output.ExitNoAnswer {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, output.ExitNoAnswer, r.stdout, r.stderr)
	}
	if e := oneJSON(t, r.stdout)["error"].(map[string]any); !strings.Contains(e["message"].(string), "FS.Put: the device rebooted") {
		t.Fatalf("error %v", e)
	}
	dev.PressReset(false)
	r = mos{}.run(t, "--port", url, "ls", "-l")
	if r.code != 0 || strings.Contains(r.stdout, " up.bin\n") {
		t.Fatalf("after the reset: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !slices.ContainsFunc(strings.Split(r.stdout, "\n"), func(l string) bool { return strings.HasSuffix(l, " up.bin.part") }) {
		t.Logf("no partial upload left at all: %q", r.stdout)
	}
}

// The device takes names up to its limit (48 bytes on the virtual
// device); the temporary upload name must not make that shorter.
func TestPutLongestName(t *testing.T) {
	url := fastDemo(t)
	src := writeFile(t, "x.bin", []byte("long name"))
	tests := []struct {
		name string
		code int
	}{
		{strings.Repeat("n", 48), 0},
		{strings.Repeat("n", 44) + ".txt", 0},
		{strings.Repeat("n", 49), output.ExitDeviceError},
	}
	for _, tt := range tests {
		r := mos{}.run(t, "--port", url, "put", src, tt.name)
		if r.code != tt.code {
			t.Errorf("put %d-byte name: exit %d, want %d\n%s%s", len(tt.name), r.code, tt.code, r.stdout, r.stderr)
		}
	}
	r := mos{}.run(t, "--port", url, "ls")
	if r.stdout != strings.Repeat("n", 44)+".txt\n"+strings.Repeat("n", 48)+"\n" {
		t.Errorf("ls: %q (no temporary file may be left)", r.stdout)
	}
}

// The local path is checked before anything is asked of the device: the
// port below does not even exist.
func TestGetChecksLocalPathFirst(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "no", "such", "dir", "x.bin")
	r := mos{}.run(t, "--port", "/dev/no-such-tty", "get", "conf9.json", dest)
	if r.code != output.ExitUsage || !strings.Contains(r.stderr, "there is no folder") || !strings.Contains(r.stderr, "mos get --help") {
		t.Errorf("exit %d\n%s", r.code, r.stderr)
	}
}
