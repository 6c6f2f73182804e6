package interop_test

// The virtual device judged by a tool mos did not write: Espressif's
// esptool-js (npm, pinned in node/package.json) runs headless under Node
// through node/rfc2217-serialport.mjs against sim.Device.ServeRFC2217 and
// flashes an image. The test then checks the device's flash itself, not
// only what the script reports. See README.md.

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

// judgeDir holds the npm project (package.json, judge.mjs).
const judgeDir = "node"

// judgeResult is the JSON summary judge.mjs prints.
type judgeResult struct {
	OK               bool    `json:"ok"`
	EsptoolJSVersion string  `json:"esptoolJsVersion"`
	Path             string  `json:"path"`
	Chip             string  `json:"chip"`
	ChipDescription  string  `json:"chipDescription"`
	CrystalMHz       float64 `json:"crystalMHz"`
	MAC              string  `json:"mac"`
	FlashID          string  `json:"flashId"`
	FlashSize        string  `json:"flashSize"`
	Address          uint32  `json:"address"`
	Size             int     `json:"size"`
	Baud             int     `json:"baud"`
	Wrote            int     `json:"wrote"`
	MD5              string  `json:"md5"`
	FlashMD5         string  `json:"flashMd5"`
	MD5OK            bool    `json:"md5ok"`
	ReadbackEqual    bool    `json:"readbackEqual"`
	BootLog          string  `json:"bootLog"`
	Steps            []struct {
		Step string `json:"step"`
		MS   int    `json:"ms"`
	} `json:"steps"`
	Warnings []string `json:"warnings"`
	TotalMS  int      `json:"totalMs"`
	Error    string   `json:"error"`
}

// needJudge returns the node binary, or skips (fails on CI) when Node or
// the pinned esptool-js is missing.
func needJudge(t *testing.T) string {
	t.Helper()
	return needNode(t, "esptool-js", "esptool-js", "package.json")
}

// testImage is a deterministic pseudo-random image: it does not compress,
// so every byte really crosses the wire.
func testImage(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x6d6f732d696d6167))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

type judgeCase struct {
	name   string
	chip   string
	mac    [6]byte
	baud   int
	noStub bool
	size   int
	// mosWrites: mos's flasher writes the image first; esptool-js then
	// only reads it back (--read-only), so both tools agree on the flash.
	mosWrites bool
}

func TestEsptoolJS(t *testing.T) {
	node := needJudge(t)
	cases := []judgeCase{
		// MACs outside each chip's default pattern, with the ESP8266 one
		// outside 18:FE:34 so that its OUI comes from eFuse word 3.
		{name: "esp8266-stub", chip: "esp8266", mac: [6]byte{0x5C, 0xCF, 0x7F, 0x0A, 0x1B, 0x2C}, baud: 921600, size: 96 << 10},
		{name: "esp32-stub", chip: "esp32", mac: [6]byte{0x24, 0x0A, 0xC4, 0x3D, 0x4E, 0x5F}, baud: 921600, size: 96 << 10},
		// The ROM path at 115200 moves every byte at 11.5 kB/s: a smaller image.
		{name: "esp32-rom", chip: "esp32", mac: [6]byte{0x30, 0xAE, 0xA4, 0x01, 0x02, 0x03}, baud: 115200, noStub: true, size: 48 << 10},
		{name: "esp32c3-stub", chip: "esp32c3", mac: [6]byte{0x58, 0xCF, 0x79, 0x6A, 0x7B, 0x8C}, baud: 921600, size: 96 << 10},
		{name: "esp32-mos-flash", chip: "esp32", mac: [6]byte{0x24, 0x0A, 0xC4, 0x11, 0x22, 0x33}, baud: 921600, size: 96 << 10, mosWrites: true},
		{name: "esp8266-mos-flash", chip: "esp8266", mac: [6]byte{0x18, 0xFE, 0x34, 0x11, 0x22, 0x33}, baud: 921600, size: 64 << 10, mosWrites: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			runJudge(t, node, tc, uint64(i+1))
		})
	}
}

func runJudge(t *testing.T, node string, tc judgeCase, seed uint64) {
	chip, err := chips.ByKey(tc.chip)
	if err != nil {
		t.Fatal(err)
	}
	const flashSize = 4 << 20
	dev, err := sim.New(sim.Config{Chip: chip, Board: sim.BoardDevKit, FlashSize: flashSize, MAC: tc.mac, Firmware: demofw.New()})
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()

	serverAddr := serveRFC2217(t, dev)
	ctx := context.Background()

	const addr = 0x10000
	img := testImage(seed, tc.size)
	dir := t.TempDir()
	imgPath := filepath.Join(dir, "image.bin")
	if err := os.WriteFile(imgPath, img, 0o644); err != nil {
		t.Fatal(err)
	}

	args := []string{filepath.Join(judgeDir, "judge.mjs"),
		"--port", serverAddr,
		"--chip", tc.chip,
		"--baud", fmt.Sprint(tc.baud),
		"--image", imgPath,
		"--addr", fmt.Sprintf("0x%x", addr),
		"--timeout", "100",
	}
	if tc.noStub {
		args = append(args, "--no-stub")
	}
	if tc.mosWrites {
		mosFlash(t, ctx, serverAddr, tc.baud, addr, img)
		args = append(args, "--read-only")
	}
	var res judgeResult
	run := runJudgeScript(t, node, args, 110*time.Second, &res, func() bool { return res.OK }, func(*judgeRun) string {
		return fmt.Sprintf("esptool-js failed against the virtual device (%s, device state %q): %s", tc.name, dev.State(), res.Error)
	})
	elapsed := run.elapsed
	if testing.Verbose() {
		var steps []string
		for _, s := range res.Steps {
			steps = append(steps, fmt.Sprintf("%s %dms", s.Step, s.MS))
		}
		t.Logf("esptool-js %s, %s path, %s in %v: %s", res.EsptoolJSVersion, res.Path, res.Chip,
			elapsed.Round(time.Millisecond), strings.Join(steps, ", "))
	}

	for _, w := range res.Warnings {
		t.Logf("judge warning: %s", w)
	}

	// What the script says, against what the device models.
	if res.EsptoolJSVersion != "0.7.0" {
		t.Errorf("esptool-js version %q, want the pinned 0.7.0", res.EsptoolJSVersion)
	}
	if res.Chip != chip.Name {
		t.Errorf("esptool-js detected %q, device is %q", res.Chip, chip.Name)
	}
	if want := macString(tc.mac); res.MAC != want {
		t.Errorf("esptool-js read MAC %s, device has %s", res.MAC, want)
	}
	if want := fmt.Sprintf("0x%06x", dev.Flash().JEDECID()); res.FlashID != want {
		t.Errorf("esptool-js read flash ID %s, device has %s", res.FlashID, want)
	}
	if want := fmt.Sprintf("%dMB", flashSize>>20); res.FlashSize != want {
		t.Errorf("esptool-js detected flash size %q, device has %s", res.FlashSize, want)
	}
	if res.Baud != tc.baud {
		t.Errorf("esptool-js ended at %d baud, asked for %d", res.Baud, tc.baud)
	}
	if wantPath := map[bool]string{false: "stub", true: "rom"}[tc.noStub]; res.Path != wantPath {
		t.Errorf("judge took the %s path, want %s", res.Path, wantPath)
	}
	wantWrote := len(img)
	if tc.mosWrites {
		wantWrote = 0
	}
	if !res.MD5OK || !res.ReadbackEqual || res.Wrote != wantWrote {
		t.Errorf("judge: md5ok=%v readbackEqual=%v wrote=%d (image %d bytes)", res.MD5OK, res.ReadbackEqual, res.Wrote, len(img))
	}

	// Independently of the script: the flash holds exactly the image.
	got := make([]byte, len(img))
	if err := dev.Flash().ReadAt(got, addr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, img) {
		i := 0
		for i < len(img) && got[i] == img[i] {
			i++
		}
		t.Errorf("device flash differs from the image at 0x%x: 0x%02x, want 0x%02x", addr+i, got[i], img[i])
	}
	// Nothing outside the image was touched (the sectors around it are blank).
	for _, r := range [][2]uint32{{addr - 0x1000, 0x1000}, {addr + uint32(len(img)), 0x1000}} {
		b := make([]byte, r[1])
		if err := dev.Flash().ReadAt(b, r[0]); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, bytes.Repeat([]byte{0xFF}, len(b))) {
			t.Errorf("flash at 0x%x..0x%x changed, but the image is at 0x%x..0x%x", r[0], r[0]+r[1], addr, addr+len(img))
		}
	}

	// The RTS pulse at the end made the chip boot from flash, not the loader.
	var wantBoot string
	if chip.IsESP8266() {
		wantBoot = "boot mode:(3,"
	} else {
		wantBoot = fmt.Sprintf("boot:0x%x (%s)", chip.Banner.SPIBoot, chip.Banner.SPIBootName)
	}
	if !strings.Contains(res.BootLog, wantBoot) {
		t.Errorf("after the reset pulse the chip printed %q, want a line with %q", res.BootLog, wantBoot)
	}
	switch st := dev.State(); st {
	case "download", "stub", "reset", "":
		t.Errorf("device state %q after the reset pulse, want it to have left the loader", st)
	}
}

func macString(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("... (%d lines before)", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// mosFlash writes img with mos's own flasher over RFC 2217, as `mos flash`
// does, and leaves the port so that esptool-js can connect next.
func mosFlash(t *testing.T, ctx context.Context, addr string, baud int, at uint32, img []byte) {
	t.Helper()
	p, err := port.Open(ctx, "rfc2217://"+addr, port.DefaultBaud)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	l, err := flasher.Open(ctx, p, flasher.SessionOptions{Baud: baud})
	if err != nil {
		t.Fatalf("mos flasher: %v", err)
	}
	if err := l.AttachFlash(ctx, 4<<20); err != nil {
		t.Fatal(err)
	}
	rep, err := l.WriteRegions(ctx, []flasher.Region{{Name: "image", Addr: at, Data: img}}, flasher.WriteOptions{})
	if err != nil || rep[0].State != flasher.StateVerified {
		t.Fatalf("mos flasher: %v %+v", err, rep)
	}
	if err := flasher.HardReset().Run(ctx, p); err != nil {
		t.Fatal(err)
	}
}
