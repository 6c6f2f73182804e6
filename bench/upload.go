package main

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"text/tabwriter"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/provision"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

// Section 4: a file uploaded over RPC (FS.Put frames through the demo
// firmware's 256-byte receive FIFO), as a share of the wire limit.
//
// The limit is the time the frames the client had to send take on the
// wire (JSON, base64 data, CRC, delimiters: what the protocol costs, not
// what a smarter client could save) at 10 bits per byte. Lost frames are
// requests sent again plus bytes the device's FIFO dropped.

const uploadGoal = 0.8

type uploadRow struct {
	baud      int
	size      int
	d         time.Duration
	wireBytes int64
	retries   int
	lost      int64
	xoffs     int
}

func measureUploads(ctx context.Context) ([]uploadRow, error) {
	var rows []uploadRow
	for _, tc := range []struct{ baud, size int }{{115200, 48 << 10}, {921600, 200 << 10}} {
		fmt.Fprintf(os.Stderr, "bench: upload %d KiB over RPC at %d baud...", tc.size>>10, tc.baud)
		r, err := measureUpload(ctx, tc.baud, tc.size)
		if err != nil {
			fmt.Fprintln(os.Stderr)
			return nil, fmt.Errorf("upload at %d baud: %w", tc.baud, err)
		}
		fmt.Fprintf(os.Stderr, " %.2f s\n", r.d.Seconds())
		rows = append(rows, r)
	}
	return rows, nil
}

// measureUpload flashes the demo firmware into a fresh virtual ESP32 (real
// timing), sets the firmware's RPC UART to baud, and uploads size bytes.
func measureUpload(ctx context.Context, baud, size int) (uploadRow, error) {
	row := uploadRow{baud: baud, size: size}
	chip, _ := chips.ByKey(chipKey)
	dev, err := sim.New(sim.Config{Chip: chip, FlashSize: 4 << 20, Firmware: demofw.New()})
	if err != nil {
		return row, err
	}
	defer dev.Close()
	if err := dev.ProgramBundle(demoBundlePath); err != nil {
		return row, err
	}
	p, err := dev.Connect()
	if err != nil {
		return row, err
	}
	defer p.Close()
	hp := benchPort{p}
	if err := flasher.HardReset().Run(ctx, hp); err != nil {
		return row, err
	}
	c, err := provision.Connect(ctx, hp, provision.Options{HandshakeTimeout: 20 * time.Second})
	if err != nil {
		return row, err
	}
	if baud != port.DefaultBaud {
		// saved, then rebooted by hand: the client's own reboot would wait
		// for the device at the old rate
		if _, err := c.ConfigSet(ctx, map[string]any{"rpc.uart.baud_rate": fmt.Sprint(baud)}, provision.SetOptions{Save: true}); err != nil {
			return row, err
		}
		if err := c.Call(ctx, "Sys.Reboot", map[string]any{"delay_ms": 100}, nil); err != nil {
			return row, err
		}
		c.Close()
		hp.SetBaudRate(baud)
		if c, err = provision.Connect(ctx, hp, provision.Options{HandshakeTimeout: 20 * time.Second}); err != nil {
			return row, err
		}
	}
	defer c.Close()
	data := make([]byte, size)
	rand.New(rand.NewSource(3)).Read(data)
	before, lostBefore := c.Stats(), dev.UARTStats().Lost
	start := time.Now()
	if err := c.Put(ctx, "bench.bin", data, nil); err != nil {
		return row, fmt.Errorf("%w (device UART: %+v; link: %+v)", err, dev.UARTStats(), c.Stats())
	}
	row.d = time.Since(start)
	after := c.Stats()
	row.wireBytes = after.BytesSent - before.BytesSent
	row.retries = after.Retries - before.Retries
	row.xoffs = after.XOFFs - before.XOFFs
	row.lost = int64(dev.UARTStats().Lost - lostBefore)
	back, err := c.Get(ctx, "bench.bin", nil)
	if err != nil {
		return row, err
	}
	if !bytes.Equal(back, data) {
		return row, fmt.Errorf("the file read back differs from what was uploaded")
	}
	return row, nil
}

func printUploads(rows []uploadRow) {
	fmt.Printf("\n4. File upload over RPC (FS.Put through the demo firmware's 256-byte FIFO, XON/XOFF), real timing\n")
	fmt.Printf("   limit = frames sent x 10 bits / baud. Goal: limit/ours >= %.1f with zero lost frames.\n\n", uploadGoal)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "   baud\tfile\tours\tlimit\tshare\t\tfile data rate\tXOFFs\tretries\tFIFO bytes lost\n")
	for _, r := range rows {
		limit := time.Duration(float64(r.wireBytes) * 10 / float64(r.baud) * float64(time.Second))
		share := limit.Seconds() / r.d.Seconds()
		ok := share >= uploadGoal && r.retries == 0 && r.lost == 0
		fmt.Fprintf(w, "   %d\t%d KiB\t%.2f s\t%.2f s\t%.2f\t%s\t%.1f KiB/s\t%d\t%d\t%d\n", r.baud, r.size>>10, r.d.Seconds(),
			limit.Seconds(), share, mark(ok), float64(r.size)/1024/r.d.Seconds(), r.xoffs, r.retries, r.lost)
	}
	w.Flush()
}

// benchPort adapts the virtual device's host port to port.Port's errors.
type benchPort struct{ *sim.HostPort }

func (p benchPort) Read(b []byte) (int, error) {
	n, err := p.HostPort.Read(b)
	if err == sim.ErrReadTimeout {
		err = port.ErrTimeout
	}
	return n, err
}

// demoBundlePath is relative to the repository root, where make runs.
var demoBundlePath = "firmware-images/esp32-demo.zip"
