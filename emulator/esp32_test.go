package emulator

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/fwbundle"
	"github.com/mos-tool/mos/fwimage"
)

// What the emulator's eFuse and flash images hold (its README): an
// ESP32-D0WD-V3 rev v3.0 with MAC 24:0a:c4:00:00:01, 4 MiB GigaDevice
// flash with JEDEC ID c8 40 16 (mos prints it as manufacturer in the low
// byte: 0x1640C8).
const (
	wantChip     = "ESP32"
	wantRevision = "v3.0"
	wantMAC      = "24:0a:c4:00:00:01"
	wantFlashID  = "0x1640C8"
	wantFlash    = 4 << 20
)

type chipInfo struct {
	Chip      string `json:"chip"`
	Revision  string `json:"revision"`
	MAC       string `json:"mac"`
	FlashID   string `json:"flash_id"`
	FlashSize int    `json:"flash_size"`
	Stub      bool   `json:"stub"`
}

type flashResult struct {
	Stub     bool `json:"stub"`
	Complete bool `json:"complete"`
	Regions  []struct {
		Name           string `json:"name"`
		State          string `json:"state"`
		SectorsSkipped int    `json:"sectors_skipped"`
	} `json:"regions"`
}

// randomFile writes n seeded random bytes (incompressible, so every byte
// travels) to a file and returns its path and contents.
func randomFile(t *testing.T, n int, seed int64) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(data)
	path := filepath.Join(t.TempDir(), fmt.Sprintf("random-%d.bin", seed))
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// Every connection after a reset finds the ROM and identifies the chip:
// the ROM's late repeats (eight unsupported-command answers after SYNC)
// must not be taken for the answer to a later command.
func TestConnectAfterResets(t *testing.T) {
	e := start(t, t.TempDir(), "download")
	for i := 0; i < 20; i++ {
		e.resetReady(t)
		var info chipInfo
		runJSON(t, &info, "--port", e.port(), "chip-info", "--reset", "none")
		if info.Chip != wantChip || info.Stub {
			t.Fatalf("round %d: chip %q stub %v, want the %s ROM", i+1, info.Chip, info.Stub, wantChip)
		}
	}
}

func TestChipInfo(t *testing.T) {
	e := start(t, t.TempDir(), "download")
	var info chipInfo
	runJSON(t, &info, "--port", e.port(), "chip-info", "--reset", "none")
	want := chipInfo{Chip: wantChip, Revision: wantRevision, MAC: wantMAC, FlashID: wantFlashID, FlashSize: wantFlash}
	if info != want {
		t.Fatalf("chip-info = %+v, want %+v", info, want)
	}
}

// A write through the flasher stub (the real esp-flasher-stub running on
// the emulated CPU) lands in the emulator's flash image and reads back.
func TestFlashWithStubAndReadBack(t *testing.T) {
	e := start(t, t.TempDir(), "download")
	const addr = 0x100000
	path, data := randomFile(t, 48<<10, 1)
	var res flashResult
	runJSON(t, &res, "--port", e.port(), "flash", "--reset", "none", fmt.Sprintf("0x%X:%s", addr, path))
	if !res.Stub || !res.Complete || len(res.Regions) != 1 || res.Regions[0].State != "verified" {
		t.Fatalf("flash result %+v, want one verified region written by the stub", res)
	}
	if got := e.flash(t, addr, len(data)); !bytes.Equal(got, data) {
		t.Fatalf("the emulator's flash image differs from what was written")
	}
	out := filepath.Join(t.TempDir(), "read.bin")
	runJSON(t, nil, "--port", e.port(), "flash-read", "--reset", "none", fmt.Sprintf("0x%X", addr), fmt.Sprint(len(data)), out)
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("flash-read returned %d bytes that differ from the %d written", len(got), len(data))
	}
}

// The ROM-only path: the ROM's own FLASH_DEFL_* and MD5, no stub.
func TestFlashROMOnly(t *testing.T) {
	e := start(t, t.TempDir(), "download")
	const addr = 0x110000
	path, data := randomFile(t, 12<<10, 2)
	var res flashResult
	runJSON(t, &res, "--port", e.port(), "flash", "--reset", "none", "--no-stub", fmt.Sprintf("0x%X:%s", addr, path))
	if res.Stub || !res.Complete || len(res.Regions) != 1 || res.Regions[0].State != "verified" {
		t.Fatalf("flash result %+v, want one region verified by the ROM", res)
	}
	if got := e.flash(t, addr, len(data)); !bytes.Equal(got, data) {
		t.Fatalf("the emulator's flash image differs from what was written")
	}
}

// A reset in the middle of a write (the cable pulled, EN pressed) makes
// mos fail, and the next run completes the write.
func TestFlashInterruptedByReset(t *testing.T) {
	e := start(t, t.TempDir(), "download")
	const addr = 0x200000
	path, data := randomFile(t, 192<<10, 3)
	arg := fmt.Sprintf("0x%X:%s", addr, path)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mos(t), "--port", e.port(), "flash", "--reset", "none", arg)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// reset once the first sector is on flash and the last is not
	var interrupted bool
	for !interrupted {
		select {
		case err := <-exited:
			t.Fatalf("mos finished (%v) before the write could be interrupted:\n%s", err, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if bytes.Equal(e.flash(t, addr, 4096), data[:4096]) {
			if bytes.Equal(e.flash(t, addr+len(data)-4096, 4096), data[len(data)-4096:]) {
				t.Fatalf("the whole image was on flash before the reset: make it larger")
			}
			e.reset(t)
			interrupted = true
		}
	}
	if err := <-exited; err == nil {
		t.Fatalf("mos reported success for a write cut short by a reset:\n%s", out.String())
	}
	if bytes.Equal(e.flash(t, addr, len(data)), data) {
		t.Fatalf("the image was complete despite the reset")
	}
	t.Logf("interrupted run:\n%s", out.String())

	var res flashResult
	e.resetReady(t)
	runJSON(t, &res, "--port", e.port(), "flash", "--reset", "none", arg)
	if !res.Complete || len(res.Regions) != 1 || res.Regions[0].State != "verified" {
		t.Fatalf("second run %+v, want the region verified", res)
	}
	if got := e.flash(t, addr, len(data)); !bytes.Equal(got, data) {
		t.Fatalf("after the second run the emulator's flash differs from the image")
	}
	t.Logf("second run skipped %d sectors already on flash", res.Regions[0].SectorsSkipped)
}

var (
	loadRe  = regexp.MustCompile(`load:0x([0-9a-f]{8}),len:(\d+)`)
	entryRe = regexp.MustCompile(`entry 0x([0-9a-f]{8})`)
	// what the ROM prints when it rejects an image (bad magic, segment
	// header, checksum)
	romImageError = regexp.MustCompile(`(?i)invalid header|csum err|checksum`)
)

// After `mos flash` of a bundle, the real ROM boots what was written: it
// loads every segment of the bundle's bootloader and jumps to its entry,
// with no header or checksum error. (The demo bootloader's segments are
// not real ESP32 code, so the CPU faults after the jump, as a chip would.)
func TestBootAfterFlash(t *testing.T) {
	root := moduleRoot(t)
	bundlePath := filepath.Join(root, "firmware-images", "esp32-demo.zip")
	b, err := fwbundle.Open(bundlePath)
	if err != nil {
		t.Fatal(err)
	}
	var boot *fwbundle.Part
	for i := range b.Parts {
		if b.Parts[i].Type == "boot" {
			boot = &b.Parts[i]
		}
	}
	if boot == nil {
		t.Fatalf("%s has no boot part", bundlePath)
	}
	img, err := fwimage.Parse(boot.Data)
	if err != nil {
		t.Fatalf("the bundle's bootloader: %v", err)
	}

	work := t.TempDir()
	e := start(t, work, "download")
	var res flashResult
	runJSON(t, &res, "--port", e.port(), "flash", "--reset", "none", bundlePath)
	if !res.Complete {
		t.Fatalf("flash result %+v", res)
	}
	e.stop()

	e = start(t, work, "flash")
	con := e.listen(t)
	e.reset(t) // boot again with the console listening from the first byte
	log, ok := con.waitFor("entry 0x", time.Minute)
	if !ok {
		t.Fatalf("the ROM did not reach the bootloader's entry point; it printed:\n%s", log)
	}
	// the first boot that got to its entry point, from its banner on (a
	// watchdog may have restarted the chip since)
	entryAt := strings.Index(log, "entry 0x")
	if i := strings.LastIndex(log[:entryAt], "rst:"); i >= 0 {
		log = log[i:]
		entryAt -= i
	}
	head := log[:entryAt]
	if m := romImageError.FindString(head); m != "" {
		t.Fatalf("the ROM rejected the image (%q):\n%s", m, log)
	}
	var loads []string
	for _, m := range loadRe.FindAllStringSubmatch(head, -1) {
		loads = append(loads, fmt.Sprintf("0x%s,%s", m[1], m[2]))
	}
	var want []string
	for _, s := range img.Segments {
		want = append(want, fmt.Sprintf("0x%08x,%d", s.Addr, len(s.Data)))
	}
	if strings.Join(loads, " ") != strings.Join(want, " ") {
		t.Fatalf("the ROM loaded %v, want the bootloader's segments %v:\n%s", loads, want, log)
	}
	m := entryRe.FindStringSubmatch(log)
	if m == nil || m[1] != fmt.Sprintf("%08x", img.Entry) {
		t.Fatalf("entry %v, want 0x%08x:\n%s", m, img.Entry, log)
	}
	t.Logf("ROM boot log:\n%s", log)
}
