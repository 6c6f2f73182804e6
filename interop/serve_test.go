package interop_test

// esptool-js through `mos serve`, as a remote user would reach a board
// shared from a lab machine: over a link with a round-trip delay, with
// esptool-js's default (classic DTR/RTS) reset, and the server playing the
// reset on the port as Espressif's esp_rfc2217_server does. See README.md.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/serve"
)

// linkDelay is the one-way delay of the relay between the judge and the
// server: a 40 ms round trip, several times the EN pin's RC delay.
const linkDelay = 20 * time.Millisecond

func TestEsptoolJSThroughServe(t *testing.T) {
	node := needJudge(t)
	const (
		chipKey = "esp32"
		addr    = 0x10000
		baud    = 921600
	)
	mac := [6]byte{0x24, 0x0A, 0xC4, 0x5E, 0x2D, 0x17}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// What `mos serve --port sim://esp32?... --listen ADDR` runs, with the
	// device kept reachable (id=) so that its flash can be checked.
	simAddr := fmt.Sprintf("sim://%s?flash=4M&board=devkit&mac=%s&id=interop-serve", chipKey, macString(mac))
	p, err := port.Open(ctx, simAddr, port.DefaultBaud)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dev := port.SimDevice(p)
	var logMu sync.Mutex
	var serverLog []string
	logf := func(msg string) {
		logMu.Lock()
		defer logMu.Unlock()
		serverLog = append(serverLog, msg)
	}
	srv, err := serve.New(p, serve.Options{Log: logf, Debug: logf})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.ServeRFC2217(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	remote := delayRelay(t, ln.Addr().String(), linkDelay)

	img := testImage(77, 64<<10)
	imgPath := filepath.Join(t.TempDir(), "image.bin")
	if err := os.WriteFile(imgPath, img, 0o644); err != nil {
		t.Fatal(err)
	}
	var res judgeResult
	runJudgeScript(t, node, []string{filepath.Join(judgeDir, "judge.mjs"),
		"--port", remote,
		"--chip", chipKey,
		"--baud", fmt.Sprint(baud),
		"--image", imgPath,
		"--addr", fmt.Sprintf("0x%x", addr),
		"--timeout", "100",
	}, 110*time.Second, &res, func() bool { return res.OK }, func(*judgeRun) string {
		return fmt.Sprintf("esptool-js failed through mos serve (device state %q): %s", dev.State(), res.Error)
	})
	for _, w := range res.Warnings {
		t.Logf("judge warning: %s", w)
	}

	if res.Chip != "ESP32" {
		t.Errorf("esptool-js detected %q, want ESP32", res.Chip)
	}
	if want := macString(mac); res.MAC != want {
		t.Errorf("esptool-js read MAC %s, device has %s", res.MAC, want)
	}
	if res.Baud != baud || !res.MD5OK || !res.ReadbackEqual || res.Wrote != len(img) {
		t.Errorf("judge: baud %d md5ok=%v readbackEqual=%v wrote=%d (image %d bytes)", res.Baud, res.MD5OK, res.ReadbackEqual, res.Wrote, len(img))
	}
	got := make([]byte, len(img))
	if err := dev.Flash().ReadAt(got, addr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, img) {
		t.Error("the device's flash does not hold the image esptool-js wrote through mos serve")
	}
	if !strings.Contains(res.BootLog, "boot:0x13 (SPI_FAST_FLASH_BOOT)") {
		t.Errorf("after the hard reset the chip printed %q, want it to boot from flash", res.BootLog)
	}

	// The resets were played by the server, not carried line by line: a
	// download-mode reset for esptool-js's connect, and the EN pulse at
	// the end.
	logMu.Lock()
	log := strings.Join(serverLog, "\n")
	logMu.Unlock()
	if testing.Verbose() {
		t.Logf("server log:\n%s\nboot log: %q", log, res.BootLog)
	}
	for _, want := range []string{"client 127.0.0.1:", "playing the download-mode sequence on the port", "playing the hard-reset sequence on the port"} {
		if !strings.Contains(log, want) {
			t.Errorf("server log lacks %q:\n%s", want, log)
		}
	}
}

// delayRelay forwards TCP connections to target, delaying every chunk by
// d in each direction (order kept), like a link with a 2*d round trip. It
// returns its address.
func delayRelay(t *testing.T, target string, d time.Duration) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); delayedCopy(s, c, d) }()
			go func() { defer wg.Done(); delayedCopy(c, s, d) }()
		}
	}()
	return ln.Addr().String()
}

// delayedCopy copies src to dst, each chunk d after it was read; when src
// ends, dst is closed once the chunks before have been written.
func delayedCopy(dst, src net.Conn, d time.Duration) {
	type chunk struct {
		at   time.Time
		data []byte
	}
	q := make(chan chunk, 1024)
	go func() {
		defer close(q)
		for {
			buf := make([]byte, 4096)
			n, err := src.Read(buf)
			if n > 0 {
				q <- chunk{time.Now().Add(d), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range q {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	for range q { // drain, so the reader is not stuck
	}
	dst.Close()
	src.Close()
	io.Copy(io.Discard, src)
}
