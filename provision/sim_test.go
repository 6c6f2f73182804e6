package provision_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/provision"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

// These tests run the client against the virtual device booted with the
// demo firmware: in fast mode for behaviour, with real timing where the
// line's rate and flow control are the point.

// devices numbers the virtual devices, so that each run (-count) gets its
// own.
var devices atomic.Int64

// bootDemo programs the ESP32 demo bundle into a virtual device's flash,
// boots it and returns its address. opts are extra sim:// options.
func bootDemo(t *testing.T, opts string) (string, *sim.Device) {
	t.Helper()
	url := fmt.Sprintf("sim://esp32?id=provision-%s-%d%s", strings.ReplaceAll(t.Name(), "/", "_"), devices.Add(1), opts)
	hp, err := sim.Open(url, demofw.New)
	if err != nil {
		t.Fatal(err)
	}
	dev := hp.Device()
	t.Cleanup(func() { dev.Close() })
	if err := dev.ProgramBundle("../firmware-images/esp32-demo.zip"); err != nil {
		t.Fatal(err)
	}
	hp.Close()
	dev.PressReset(false)
	return url, dev
}

func connect(t *testing.T, url string, o provision.Options) *provision.Client {
	c, _ := connectClosable(t, url, o)
	return c
}

// connectClosable also returns a function that closes the client and its
// port before the test ends (the virtual device takes one host at a time).
func connectClosable(t *testing.T, url string, o provision.Options) (*provision.Client, func()) {
	t.Helper()
	p, err := port.Open(t.Context(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	c, err := provision.Connect(t.Context(), p, o)
	if err != nil {
		p.Close()
		t.Fatalf("connect: %v", err)
	}
	var once sync.Once
	closeAll := func() {
		once.Do(func() {
			c.Close()
			p.Close()
		})
	}
	t.Cleanup(closeAll)
	return c, closeAll
}

func randomData(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 2))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// The largest file the file system holds goes there and back byte for
// byte; one byte more is refused before anything is sent.
func TestSimWholeFileSystemRoundTrip(t *testing.T) {
	url, _ := bootDemo(t, "&fast=1")
	c := connect(t, url, provision.Options{})
	info, err := c.GetInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.FSSize < 240<<10 || info.FSFree != info.FSSize {
		t.Fatalf("fs %d of %d free", info.FSFree, info.FSSize)
	}
	data := randomData(int(info.FSFree), 1)
	if err := c.Put(t.Context(), "all.bin", data, nil); err != nil {
		t.Fatal(err)
	}
	back, err := c.Get(t.Context(), "all.bin", nil)
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("get: %d bytes, equal %v, %v", len(back), bytes.Equal(back, data), err)
	}
	err = c.Put(t.Context(), "more.bin", []byte("x"), nil)
	var ns *provision.NoSpaceError
	if !errors.As(err, &ns) || ns.Free != 0 {
		t.Fatalf("put into a full fs: %v", err)
	}
	// Replacing the big file with another as big works: the old one goes
	// first since both cannot fit.
	data2 := randomData(len(data)-5000, 2)
	if err := c.Put(t.Context(), "all.bin", data2, nil); err != nil {
		t.Fatal(err)
	}
	if back, _ := c.Get(t.Context(), "all.bin", nil); !bytes.Equal(back, data2) {
		t.Fatal("replaced file differs")
	}
	if s := c.Stats(); s.Retries != 0 || s.CorruptReads != 0 {
		t.Fatalf("link trouble: %+v", s)
	}
}

// measure runs f and returns the share of the line's capacity that the
// bytes sent (or, with read, received) meanwhile used.
func measure(c *provision.Client, baud int, read bool, f func() error) (float64, time.Duration, error) {
	count := func() int64 {
		if read {
			return c.Stats().BytesRead
		}
		return c.Stats().BytesSent
	}
	before := count()
	start := time.Now()
	err := f()
	el := time.Since(start)
	return float64(count()-before) * 10 / float64(baud) / el.Seconds(), el, err
}

// With real timing at 115200 baud an upload keeps the line at least 80%
// busy and loses nothing.
func TestSimUploadRate(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time transfer")
	}
	url, dev := bootDemo(t, "")
	c := connect(t, url, provision.Options{})
	data := randomData(24<<10, 3)
	eff, el, err := measure(c, 115200, false, func() error { return c.Put(t.Context(), "rate.bin", data, nil) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("upload: %d bytes in %v, line %.0f%% busy, %.0f payload B/s", len(data), el, eff*100, float64(len(data))/el.Seconds())
	if eff < 0.8 {
		t.Errorf("upload: the line was %.0f%% busy, want at least 80%%", eff*100)
	}
	var back []byte
	eff, el, err = measure(c, 115200, true, func() (err error) {
		back, err = c.Get(t.Context(), "rate.bin", nil)
		return err
	})
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("get: %v", err)
	}
	t.Logf("download: %d bytes in %v, line %.0f%% busy, %.0f payload B/s", len(data), el, eff*100, float64(len(data))/el.Seconds())
	if eff < 0.8 {
		t.Errorf("download: the line was %.0f%% busy, want at least 80%%", eff*100)
	}
	s, u := c.Stats(), dev.UARTStats()
	if s.Retries != 0 || s.CorruptReads != 0 || u.Lost != 0 {
		t.Fatalf("lost frames: %+v, device lost %d bytes", s, u.Lost)
	}
}

// Two uploads at once keep the device busy while the next frame streams
// in: on a used file system each new sector needs a 45 ms erase, its FIFO
// fills, it says XOFF, and the client waits instead of overrunning it.
func TestSimFlowControlUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time transfer")
	}
	url, dev := bootDemo(t, "")
	c := connect(t, url, provision.Options{})
	// Leave a mark in every free data sector of the file system (0x190000,
	// after its two journal sectors), as earlier files would have.
	for addr := uint32(0x192000); addr < 0x1D0000; addr += 0x1000 {
		dev.Flash().Program(addr+100, []byte{0})
	}
	files := map[string][]byte{"a.bin": randomData(12<<10, 4), "b.bin": randomData(12<<10, 5)}
	var wg sync.WaitGroup
	for name, data := range files {
		wg.Go(func() {
			if err := c.Put(t.Context(), name, data, nil); err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	wg.Wait()
	for name, data := range files {
		if back, err := c.Get(t.Context(), name, nil); err != nil || !bytes.Equal(back, data) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	s, u := c.Stats(), dev.UARTStats()
	t.Logf("client %+v; device UART %+v", s, u)
	if u.Lost != 0 || s.Retries != 0 {
		t.Fatalf("device lost %d bytes; %d retries", u.Lost, s.Retries)
	}
	if u.XOFFSent == 0 || s.XOFFs == 0 {
		t.Fatalf("the device never needed XOFF: the test did not load it")
	}
}

// A reset in the middle of an upload never leaves a partial file under the
// real name: the upload either fails (the device went to its ROM loader)
// or finishes byte-exact (the device rebooted and the client went on).
func TestSimResetDuringUpload(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time transfer")
	}
	for _, download := range []bool{true, false} {
		name := map[bool]string{true: "into ROM loader", false: "reboot"}[download]
		t.Run(name, func(t *testing.T) {
			url, dev := bootDemo(t, "")
			c, closeFirst := connectClosable(t, url, provision.Options{HandshakeTimeout: 2 * time.Second, CallTimeout: 2 * time.Second})
			data := randomData(24<<10, 6)
			var once sync.Once
			err := c.Put(t.Context(), "up.bin", data, func(done, total int64) {
				if done >= 8<<10 {
					once.Do(func() { dev.PressReset(download) })
				}
			})
			if download {
				var dr *provision.DeviceResetError
				if !errors.As(err, &dr) {
					t.Fatalf("err %v, want DeviceResetError", err)
				}
				dev.PressReset(false) // back to the firmware, to look
			}
			closeFirst()
			c2 := connect(t, url, provision.Options{})
			files, lerr := c2.ListExt(context.Background(), "")
			if lerr != nil {
				t.Fatal(lerr)
			}
			i := slices.IndexFunc(files, func(f provision.FileInfo) bool { return f.Name == "up.bin" })
			switch {
			case err != nil && i >= 0:
				t.Fatalf("upload failed (%v) but up.bin is there: %v", err, files)
			case err == nil:
				back, gerr := c2.Get(t.Context(), "up.bin", nil)
				if gerr != nil || !bytes.Equal(back, data) {
					t.Fatalf("upload reported written, content differs: %v", gerr)
				}
			}
			t.Logf("%s: %v; files %v", name, err, files)
		})
	}
}
