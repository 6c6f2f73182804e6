package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/fwbundle"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomData(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func TestFlashAddrFileAndReflash(t *testing.T) {
	id := t.Name()
	url := "sim://esp32c3?fast=1&id=" + id
	data := randomData(70000, 1)
	file := writeFile(t, "app.bin", data)
	r := mos{}.run(t, "--port", url, "flash", "0x10000:"+file, "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	res := oneJSON(t, r.stdout)["result"].(map[string]any)
	regs := res["regions"].([]any)
	if len(regs) != 1 || regs[0].(map[string]any)["state"] != "verified" || res["complete"] != true {
		t.Fatalf("result %v", res)
	}
	dev := sim.Shared(id)
	got := make([]byte, len(data))
	dev.Flash().ReadAt(got, 0x10000)
	if !bytes.Equal(got, data) {
		t.Fatal("flash does not hold the file")
	}
	r = mos{}.run(t, "--port", url, "flash", "0x10000:"+file)
	if r.code != 0 || !strings.Contains(r.stdout, "unchanged") {
		t.Fatalf("re-flash: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// flash-read gives the same bytes back; the file appears only complete
	out := filepath.Join(t.TempDir(), "back.bin")
	r = mos{}.run(t, "--port", url, "flash-read", "0x10000", "70000", out)
	back, _ := os.ReadFile(out)
	if r.code != 0 || !bytes.Equal(back, data) {
		t.Fatalf("flash-read: exit %d, equal %v\n%s", r.code, bytes.Equal(back, data), r.stderr)
	}
	r = mos{}.run(t, "--port", url, "flash-erase", "0x10000", "0x1000")
	dev.Flash().ReadAt(got[:0x1000], 0x10000)
	if r.code != 0 || !bytes.Equal(got[:0x1000], bytes.Repeat([]byte{0xFF}, 0x1000)) {
		t.Fatalf("flash-erase: exit %d %s", r.code, r.stderr)
	}
}

// Bad inputs are refused before the board is touched: the virtual device
// stays in its boot loop (never reset into download mode).
func TestFlashRefusesBadInput(t *testing.T) {
	data := randomData(5000, 2)
	file := writeFile(t, "a.bin", data)
	tests := []struct {
		name  string
		args  []string
		code  int
		reset bool // the board is reached before the refusal (needs the chip or flash size)
	}{
		{"missing file", []string{"0x10000:/nonexistent/app.bin"}, output.ExitBadInput, false},
		{"not a bundle", []string{file}, output.ExitUsage, false},
		{"overlap", []string{"0x10000:" + file, "0x10800:" + file}, output.ExitBadInput, false},
		{"past flash end", []string{"0x3FF000:" + file}, output.ExitBadInput, true},
		{"unaligned", []string{"0x10001:" + file}, output.ExitBadInput, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := t.Name()
			url := "sim://esp32?fast=1&id=" + id
			args := append([]string{"--port", url, "flash"}, tt.args...)
			r := mos{}.run(t, args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			dev := sim.Shared(id)
			if dev == nil {
				if tt.reset {
					t.Fatal("the device was never opened")
				}
				return // refused before even opening the port
			}
			defer dev.Close()
			buf := make([]byte, 0x10000)
			dev.Flash().ReadAt(buf, 0x3F0000)
			if !bytes.Equal(buf, bytes.Repeat([]byte{0xFF}, len(buf))) {
				t.Fatal("flash was written despite the refusal")
			}
		})
	}
}

// The demo bundle flashes onto its chip and boots: the virtual device
// prints the app descriptor of the demo firmware.
func TestFlashDemoBundleBoots(t *testing.T) {
	for _, chip := range []string{"esp32", "esp32c3", "esp8266"} {
		t.Run(chip, func(t *testing.T) {
			t.Parallel()
			id := t.Name()
			r := mos{}.run(t, "--port", "sim://"+chip+"?fast=1&id="+id, "flash", "../../firmware-images/"+chip+"-demo.zip")
			if r.code != 0 {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			dev := sim.Shared(id)
			defer dev.Close()
			waitState(t, dev, "app")
		})
	}
}

func waitState(t *testing.T, dev *sim.Device, want string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		if dev.State() == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("device state %q, want %q", dev.State(), want)
}

// A bundle for another chip is refused before any write, with a hint
// naming --chip; --chip overrides.
func TestFlashChipMismatch(t *testing.T) {
	id := t.Name()
	url := "sim://esp32c3?fast=1&id=" + id
	r := mos{}.run(t, "--port", url, "flash", "../../firmware-images/esp32-demo.zip", "--json")
	if r.code != output.ExitBadInput {
		t.Fatalf("exit %d, want %d\n%s%s", r.code, output.ExitBadInput, r.stdout, r.stderr)
	}
	e := oneJSON(t, r.stdout)["error"].(map[string]any)
	if !strings.Contains(e["hint"].(string), "--chip") {
		t.Errorf("hint %q does not name --chip", e["hint"])
	}
	dev := sim.Shared(id)
	defer dev.Close()
	buf := make([]byte, 0x1000)
	dev.Flash().ReadAt(buf, 0x10000)
	if !bytes.Equal(buf, bytes.Repeat([]byte{0xFF}, len(buf))) {
		t.Fatal("flash written despite the chip mismatch")
	}
}

// --flash-size detect rewrites the bootloader header and its SHA-256, so
// the ROM still accepts it.
func TestFlashPatchesBootloaderParams(t *testing.T) {
	id := t.Name()
	r := mos{}.run(t, "--port", "sim://esp32?fast=1&flash=16M&id="+id, "flash", "../../firmware-images/esp32-demo.zip",
		"--flash-size", "detect", "--flash-mode", "dout", "--flash-freq", "80m")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	dev := sim.Shared(id)
	defer dev.Close()
	hdr := make([]byte, 4)
	dev.Flash().ReadAt(hdr, 0x1000)
	if hdr[2] != 3 || hdr[3] != 0x4F {
		t.Fatalf("bootloader header % x: want mode 3 (dout), size 16MB (4) / 80m (F)", hdr)
	}
	waitState(t, dev, "app") // the recomputed digest is accepted
}

// demoPart is where the demo bundle puts a part.
func demoPart(t *testing.T, chip, name string) *fwbundle.Part {
	t.Helper()
	b, err := fwbundle.Open("../../firmware-images/" + chip + "-demo.zip")
	if err != nil {
		t.Fatal(err)
	}
	p := b.Part(name)
	if p == nil {
		t.Fatalf("the %s demo bundle has no part %q", chip, name)
	}
	return p
}

// Re-flashing a bundle over a board whose data partitions hold its own
// files says so before writing and reports them replaced; --keep-fs
// leaves them. Flashing a blank board raises no alarm.
func TestFlashDataPartitions(t *testing.T) {
	fs := demoPart(t, "esp32", "fs")
	files := []byte("the board's own files")
	tests := []struct {
		name         string
		flags        []string
		wantReplaced []any
		wantKept     []any
		keptOnBoard  bool
	}{
		{"default replaces them, saying so", nil, []any{"fs"}, []any{}, false},
		{"--keep-fs keeps them", []string{"--keep-fs"}, []any{}, []any{"fs"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := t.Name()
			url := "sim://esp32?fast=1&id=" + id
			r := mos{}.run(t, "--port", url, "flash", "../../firmware-images/esp32-demo.zip", "--json")
			if r.code != 0 {
				t.Fatalf("first flash: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			doc := oneJSON(t, r.stdout)
			if w := doc["warnings"].([]any); len(w) != 0 {
				t.Errorf("blank board: warnings %v", w)
			}
			dev := sim.Shared(id)
			defer dev.Close()
			// the board's own data: a file put on the running firmware's
			// file system (writing raw bytes under the firmware would race
			// its mount, which formats what it cannot read)
			local := filepath.Join(t.TempDir(), "own.txt")
			if err := os.WriteFile(local, files, 0o644); err != nil {
				t.Fatal(err)
			}
			if r := (mos{}).run(t, "--port", url, "put", local, "own.txt"); r.code != 0 {
				t.Fatalf("put: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}

			args := append([]string{"--port", url, "flash", "../../firmware-images/esp32-demo.zip", "--json"}, tt.flags...)
			r = mos{}.run(t, args...)
			if r.code != 0 {
				t.Fatalf("re-flash: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			doc = oneJSON(t, r.stdout)
			res := doc["result"].(map[string]any)
			if got := res["data_replaced"]; fmt.Sprint(got) != fmt.Sprint(tt.wantReplaced) {
				t.Errorf("data_replaced %v, want %v", got, tt.wantReplaced)
			}
			if got := res["data_kept"]; fmt.Sprint(got) != fmt.Sprint(tt.wantKept) {
				t.Errorf("data_kept %v, want %v", got, tt.wantKept)
			}
			warned := false
			for _, w := range doc["warnings"].([]any) {
				s := w.(string)
				warned = warned || (strings.HasPrefix(s, fmt.Sprintf("fs at 0x%X holds the board's own data", fs.Addr)) && strings.HasSuffix(s, "--keep-fs keeps it"))
			}
			if warned != (len(tt.wantReplaced) > 0) {
				t.Errorf("warned of the replacement: %v; warnings %v", warned, doc["warnings"])
			}
			for _, reg := range res["regions"].([]any) {
				m := reg.(map[string]any)
				if m["name"] == "fs" {
					want := "replaced"
					if tt.keptOnBoard {
						want = "kept"
					}
					if m["data"] != want {
						t.Errorf("fs region %v: data %q, want %q", m, m["data"], want)
					}
				}
			}
			r = mos{}.run(t, "--port", url, "ls")
			if r.code != 0 {
				t.Fatalf("ls: exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout, "own.txt") != tt.keptOnBoard {
				t.Errorf("files on the board after the flash:\n%s\nown.txt kept expected: %v", r.stdout, tt.keptOnBoard)
			}
		})
	}
}

// The text table names the replaced data partition.
func TestFlashDataReplacedText(t *testing.T) {
	fs := demoPart(t, "esp32c3", "fs")
	id := t.Name()
	url := "sim://esp32c3?fast=1&id=" + id
	if r := (mos{}).run(t, "--port", url, "flash", "../../firmware-images/esp32c3-demo.zip"); r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	dev := sim.Shared(id)
	defer dev.Close()
	dev.Flash().Program(fs.Addr, []byte("files"))
	r := mos{}.run(t, "--port", url, "flash", "../../firmware-images/esp32c3-demo.zip")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	warning := fmt.Sprintf("Warning: fs at 0x%X holds the board's own data (files, settings): this flash replaces it with the bundle's; --keep-fs keeps it\n", fs.Addr)
	if w := strings.Index(r.stderr, warning); w < 0 || w > strings.Index(r.stderr, "Writing") {
		t.Errorf("no warning before writing:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "board's data replaced") || !strings.Contains(r.stdout, "replaced the board's data in fs with the bundle's") {
		t.Errorf("table does not name the replaced data:\n%s", r.stdout)
	}
}

// cancelOnProgress cancels a context at the first progress line of a
// stage, the way Ctrl-C lands in the middle of a write.
type cancelOnProgress struct {
	bytes.Buffer
	stage  string
	cancel context.CancelFunc
}

func (w *cancelOnProgress) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(`"stage":"`+w.stage+`"`)) {
		w.cancel()
	}
	return w.Buffer.Write(p)
}

// An interrupted flash exits 130 with an "error" object, and the regions
// it got through as the partial "result" in the same document.
func TestFlashInterruptedJSON(t *testing.T) {
	id := t.Name()
	file := writeFile(t, "app.bin", randomData(300000, 3))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out bytes.Buffer
	errw := &cancelOnProgress{stage: "writing", cancel: cancel}
	a := newApp(&out, errw)
	a.getenv = func(string) string { return "" }
	code := execute(ctx, a, []string{"--port", "sim://esp32?fast=1&id=" + id, "flash", "0x10000:" + file, "--json"})
	if d := sim.Shared(id); d != nil {
		defer d.Close()
	}
	if code != output.ExitInterrupted {
		t.Fatalf("exit %d, want %d\n%s%s", code, output.ExitInterrupted, out.String(), errw.String())
	}
	doc := oneJSON(t, out.String())
	e, ok := doc["error"].(map[string]any)
	if !ok || e["name"] != "interrupted" || e["code"] != float64(output.ExitInterrupted) {
		t.Fatalf("error %v\n%s", doc["error"], out.String())
	}
	res, ok := doc["result"].(map[string]any)
	if !ok || res["complete"] != false || len(res["regions"].([]any)) != 1 {
		t.Fatalf("partial result %v", doc["result"])
	}
	if st := res["regions"].([]any)[0].(map[string]any)["state"]; st == "verified" {
		t.Errorf("interrupted region reported %q", st)
	}
}

// A flash setting the detected chip cannot take is refused before any
// write: as a usage error naming the flag when the user gave it, as a bad
// input when it came from flasher_args.json.
func TestFlashParamsForDetectedChip(t *testing.T) {
	dir := t.TempDir()
	app := randomData(5000, 5)
	os.WriteFile(filepath.Join(dir, "app.bin"), app, 0o644)
	args := `{"flash_files": {"0x10000": "app.bin"}, "flash_settings": {"flash_mode": "dio", "flash_size": "2MB-c1", "flash_freq": "40m"}}`
	os.WriteFile(filepath.Join(dir, "flasher_args.json"), []byte(args), 0o644)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"flag", []string{"0x10000:" + filepath.Join(dir, "app.bin"), "--flash-size", "2MB-c1"}, output.ExitUsage, `--flash-size: flash size "2MB-c1" is not one ESP32 image headers can encode`},
		{"flasher_args.json", []string{filepath.Join(dir, "flasher_args.json")}, output.ExitBadInput, "the firmware's flash settings"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := t.Name()
			r := mos{}.run(t, append([]string{"--port", "sim://esp32?fast=1&id=" + id, "--json", "flash"}, tt.args...)...)
			if d := sim.Shared(id); d != nil {
				defer d.Close()
				got := make([]byte, len(app))
				d.Flash().ReadAt(got, 0x10000)
				if bytes.Equal(got, app) {
					t.Error("written despite the refusal")
				}
			}
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			e := oneJSON(t, r.stdout)["error"].(map[string]any)
			if !strings.Contains(e["message"].(string), tt.want) {
				t.Errorf("message %q, want %q", e["message"], tt.want)
			}
			if tt.code == output.ExitUsage && e["hint"] != "run `mos flash --help` for usage" {
				t.Errorf("hint %q", e["hint"])
			}
		})
	}
}
