// Command bench measures how fast mos flashes and how much memory it
// needs, against the virtual device (package sim) with real wire and flash
// timing, and side by side with esptool-js on an identical device. It
// prints measurements and ratios against goals; a missed goal is reported,
// never an error. See README.md.
//
//	go run ./bench                 what make bench runs
//	BENCH_QUICK=1 go run ./bench   skips the 115200-baud rows
//	BENCH_RUNS=3 go run ./bench    best of 3 runs per row (a noisy machine)
//	BENCH_ONLY=upload go run ./bench   only the RPC file upload rows
//	BENCH_ONLY=console go run ./bench  only the console streaming rows
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

const (
	chipKey   = "esp32"
	flashSize = 16 << 20
	appAddr   = 0x10000
	imageSize = 1 << 20
	reflashAt = 921600
)

// Goals, as ratios.
const (
	goalVsLimit   = 1.10 // ours / physical limit
	goalVsJS      = 1.00 // ours / esptool-js, strictly below
	goalReflash   = 0.05 // unchanged image, share of the first flash
	goalChanged   = 0.10 // 4 KiB changed
	goalMemoryMiB = 64
)

func main() {
	child := flag.Bool("child", false, "internal: flash one image with the library and exit (memory row)")
	portAddr := flag.String("port", "", "child: port address")
	image := flag.String("image", "", "child: image file")
	addr := flag.Uint("addr", appAddr, "child: flash address")
	baud := flag.Int("baud", 2000000, "child: working baud rate")
	duration := flag.Duration("duration", consoleDuration, "console child: how long the device streams (its end line stops the console)")
	consoleChild := flag.String("console-child", "", "internal: read the console stream in this mode and report (console rows)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	var err error
	switch {
	case *consoleChild != "":
		err = runConsoleChild(ctx, *consoleChild, *portAddr, *baud, *duration)
	case *child:
		err = runChild(ctx, *portAddr, *image, uint32(*addr), *baud)
	default:
		var runs int
		if runs, err = envRuns(); err == nil {
			err = run(ctx, os.Getenv("BENCH_QUICK") != "", runs)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// envRuns reads BENCH_RUNS: how many runs per row, the best one kept.
func envRuns() (int, error) {
	v := os.Getenv("BENCH_RUNS")
	if v == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("BENCH_RUNS=%q: want a number of runs per row, 1 or more", v)
	}
	return n, nil
}

// device is a fresh virtual ESP32 (blank 16 MiB flash) served over
// RFC 2217 on 127.0.0.1, as a ser2net-style serial server would.
type device struct {
	*sim.Device
	addr   string // rfc2217://127.0.0.1:PORT
	hostPt string // 127.0.0.1:PORT, for esptool-js
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newDevice(ctx context.Context, fast bool) (*device, error) {
	chip, err := chips.ByKey(chipKey)
	if err != nil {
		return nil, err
	}
	dev, err := sim.New(sim.Config{Chip: chip, FlashSize: flashSize, Fast: fast, Firmware: demofw.New()})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		dev.Close()
		return nil, err
	}
	d := &device{Device: dev, addr: "rfc2217://" + ln.Addr().String(), hostPt: ln.Addr().String()}
	ctx, d.cancel = context.WithCancel(ctx)
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := dev.ServeRFC2217(ctx, ln); err != nil {
			fmt.Fprintln(os.Stderr, "bench: RFC 2217 server:", err)
		}
	}()
	return d, nil
}

func (d *device) Close() {
	d.cancel()
	d.wg.Wait()
	d.Device.Close()
}

// check reads the flash back directly from the model: a run counts only if
// the image is really there.
func (d *device) check(addr uint32, img []byte) error {
	got := make([]byte, len(img))
	if err := d.Flash().ReadAt(got, addr); err != nil {
		return err
	}
	if !bytes.Equal(got, img) {
		i := 0
		for got[i] == img[i] {
			i++
		}
		return fmt.Errorf("flash differs from the image at 0x%X", addr+uint32(i))
	}
	return nil
}

// ourRun is one flash by the library, timed from opening the port to the
// verified write.
type ourRun struct {
	d      time.Duration
	phases []phase
	report []flasher.RegionReport
}

// flashOurs flashes img at addr through the port and returns the timing.
// The device gets a hard reset afterwards (not timed), as `mos flash` does.
func flashOurs(ctx context.Context, portAddr string, addr uint32, img []byte, baud int) (*ourRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	var p port.Port
	var start time.Time
	// The server takes one client at a time and notices the previous one
	// left only after a moment: retry a refused open, timing the last try.
	for try := 0; ; try++ {
		var err error
		start = time.Now()
		if p, err = port.Open(ctx, portAddr, port.DefaultBaud); err == nil {
			break
		}
		if try == 20 || ctx.Err() != nil {
			return nil, err
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer p.Close()
	tp := newTracePort(p, start)
	l, err := flasher.Open(ctx, tp, flasher.SessionOptions{Baud: baud})
	if err != nil {
		return nil, err
	}
	if err := l.AttachFlash(ctx, flashSize); err != nil {
		return nil, err
	}
	rep, err := l.WriteRegions(ctx, []flasher.Region{{Name: "app", Addr: addr, Data: img}}, flasher.WriteOptions{})
	if err != nil {
		return nil, err
	}
	d := time.Since(start)
	if got := p.BaudRate(); got != baud {
		return nil, fmt.Errorf("flasher fell back to %d baud (asked %d)", got, baud)
	}
	if err := flasher.HardReset().Run(ctx, p); err != nil {
		return nil, err
	}
	return &ourRun{d: d, phases: tp.phases(d, baud), report: rep}, nil
}

// settle lets the device's server notice a closed client, so that the next
// open is not refused as busy and the next timing starts clean.
func settle() { time.Sleep(300 * time.Millisecond) }
