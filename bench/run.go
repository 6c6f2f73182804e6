package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"text/tabwriter"
	"time"

	"github.com/mos-tool/mos/flasher"
)

type benchImage struct {
	name       string
	data       []byte
	path       string // on disk, for esptool-js
	compressed int    // zlib level 9
}

// row is one image at one baud rate: ours and esptool-js, each on a fresh
// device.
type row struct {
	img  *benchImage
	baud int
	lim  limit
	ours *ourRun
	js   *jsRun
}

// reflash is a second flash onto the device the first one wrote.
type reflash struct {
	img            *benchImage
	first          *ourRun
	same, changed  *ourRun
	changedSectors int
}

func run(ctx context.Context, quick bool, runs int) error {
	began := time.Now()
	if os.Getenv("BENCH_ONLY") == "console" {
		rows, err := measureConsole(ctx, quick)
		if err != nil {
			return err
		}
		printConsole(rows, quick)
		return nil
	}
	if os.Getenv("BENCH_ONLY") == "upload" {
		uploads, err := measureUploads(ctx)
		if err != nil {
			return err
		}
		printUploads(uploads)
		return nil
	}
	node, err := findNode()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "mos-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	images := []*benchImage{
		{name: "incompressible", data: randomImage(1, imageSize)},
		{name: "firmware-like", data: firmwareImage(1, imageSize)},
	}
	for _, im := range images {
		im.path = filepath.Join(tmp, im.name+".bin")
		if err := os.WriteFile(im.path, im.data, 0o644); err != nil {
			return err
		}
		im.compressed = zlibSize(im.data)
	}
	bauds := []int{115200, 921600, 2000000}
	if quick {
		bauds = bauds[1:]
	}

	fmt.Printf("mos flashing benchmark: virtual %s, %d MiB flash, real wire and flash timing, over RFC 2217 on localhost\n",
		chipKey, flashSize>>20)
	for _, im := range images {
		fmt.Printf("  %-14s %d KiB at 0x%X, zlib -9: %d bytes (%.1f%%)\n", im.name, len(im.data)>>10, appAddr,
			im.compressed, 100*float64(im.compressed)/float64(len(im.data)))
	}
	fmt.Printf("  flash model for the region: %.2f s (erase + page programs, sim.DefaultFlashTimings)\n", flashTime(appAddr, imageSize).Seconds())
	if quick {
		fmt.Println("  BENCH_QUICK: 115200-baud rows skipped")
	}
	if runs > 1 {
		fmt.Printf("  BENCH_RUNS=%d: each time is the best of %d runs\n", runs, runs)
	}
	loadWarning()
	fmt.Println()

	var rows []*row
	var refl []*reflash
	for _, im := range images {
		for _, baud := range bauds {
			r := &row{img: im, baud: baud, lim: physicalLimit(appAddr, len(im.data), im.compressed, baud)}
			for i := range runs {
				// The re-flash rows reuse the first run's device.
				ours, js, rf, err := measureRow(ctx, node, im, baud, i == 0 && baud == reflashAt)
				if err != nil {
					return err
				}
				if r.ours == nil || ours.d < r.ours.d {
					r.ours = ours
				}
				if r.js == nil || js.d < r.js.d {
					r.js = js
				}
				if rf != nil {
					refl = append(refl, rf)
				}
			}
			rows = append(rows, r)
		}
	}
	printRows(rows)
	printReflash(refl)

	fmt.Fprintln(os.Stderr, "bench: peak memory with a 16 MiB image...")
	mem, err := measureMemory(ctx, tmp)
	if err != nil {
		return err
	}
	printMemory(mem)
	uploads, err := measureUploads(ctx)
	if err != nil {
		return err
	}
	printUploads(uploads)
	cons, err := measureConsole(ctx, quick)
	if err != nil {
		return err
	}
	printConsole(cons, quick)
	fmt.Printf("\nbench took %s\n", time.Since(began).Round(time.Second))
	return nil
}

// measureRow flashes im at baud with mos, then with esptool-js, each on a
// fresh device, and checks the flash after each. With reflash, it also
// measures re-flashing onto mos's device.
func measureRow(ctx context.Context, node string, im *benchImage, baud int, withReflash bool) (*ourRun, *jsRun, *reflash, error) {
	fmt.Fprintf(os.Stderr, "bench: %s at %d baud: mos...", im.name, baud)
	dev, err := newDevice(ctx, false)
	if err != nil {
		return nil, nil, nil, err
	}
	ours, err := flashOurs(ctx, dev.addr, appAddr, im.data, baud)
	if err == nil {
		err = dev.check(appAddr, im.data)
	}
	var rf *reflash
	if err == nil {
		fmt.Fprintf(os.Stderr, " %.2f s;", ours.d.Seconds())
		if withReflash {
			fmt.Fprint(os.Stderr, " re-flash...")
			if rf, err = measureReflash(ctx, dev, im, ours); err == nil {
				fmt.Fprintf(os.Stderr, " %.2f s, %.2f s;", rf.same.d.Seconds(), rf.changed.d.Seconds())
			}
		}
	}
	dev.Close()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("mos, %s at %d baud: %w", im.name, baud, err)
	}
	fmt.Fprint(os.Stderr, " esptool-js...")

	if dev, err = newDevice(ctx, false); err != nil {
		return nil, nil, nil, err
	}
	js, err := flashJS(ctx, node, dev.hostPt, im.path, appAddr, baud)
	if err == nil {
		err = dev.check(appAddr, im.data)
	}
	dev.Close()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("esptool-js, %s at %d baud: %w", im.name, baud, err)
	}
	fmt.Fprintf(os.Stderr, " %.2f s\n", js.d.Seconds())
	return ours, js, rf, nil
}

func mark(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

// loadWarning says when other work competes for the CPU: the device model,
// both flashers and the host's compression all need it, so timings from a
// busy machine are worse than the code deserves. Checked once, before the
// bench adds load of its own.
func loadWarning() {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return
	}
	var load float64
	if _, err := fmt.Sscan(string(b), &load); err != nil {
		return
	}
	if n := runtime.NumCPU(); load > 0.5*float64(n) {
		fmt.Printf("  WARNING: load average %.2f on %d CPUs: other work competes with the bench; timings are pessimistic\n", load, n)
	}
}

func printRows(rows []*row) {
	fmt.Printf("1. First flash of 1 MiB at 0x%X on a blank device: time from opening the port to the verified write\n", appAddr)
	fmt.Printf("   (connect, stub upload and MD5 included). limit = max(zlib -9 size x 10 bits / baud, flash erase + program).\n")
	fmt.Printf("   Goals: ours/limit <= %.2f, ours/esptool-js < %.2f.\n\n", goalVsLimit, goalVsJS)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "image\tbaud\tours\tlimit\tbound\tours/limit\t\tesptool-js\tours/esptool-js\t\t")
	for _, r := range rows {
		vsLim := r.ours.d.Seconds() / r.lim.max().Seconds()
		vsJS := r.ours.d.Seconds() / r.js.d.Seconds()
		fmt.Fprintf(w, "%s\t%d\t%.2f s\t%.2f s\t%s\t%.2f\t%s\t%.2f s\t%.2f\t%s\t\n",
			r.img.name, r.baud, r.ours.d.Seconds(), r.lim.max().Seconds(), r.lim.bound(),
			vsLim, mark(vsLim <= goalVsLimit), r.js.d.Seconds(), vsJS, mark(vsJS < goalVsJS))
	}
	w.Flush()

	fmt.Println("\n   Where the time goes (ours: from the command trace; esptool-js: its steps):")
	for _, r := range rows {
		fmt.Printf("   %s @ %d\n     mos:        %s\n     esptool-js: %s\n", r.img.name, r.baud,
			formatPhases(r.ours.phases), formatPhases(r.js.steps))
	}
}

// measureReflash flashes again onto the device the first run wrote: the
// same image (nothing to write), then with one 4 KiB sector changed.
func measureReflash(ctx context.Context, dev *device, im *benchImage, first *ourRun) (*reflash, error) {
	rf := &reflash{img: im, first: first}
	settle()
	var err error
	if rf.same, err = flashOurs(ctx, dev.addr, appAddr, im.data, reflashAt); err != nil {
		return nil, fmt.Errorf("re-flash, same image: %w", err)
	}
	if st := rf.same.report[0].State; st != flasher.StateUnchanged {
		return nil, fmt.Errorf("re-flash of the same image: region %s, want %s", st, flasher.StateUnchanged)
	}
	// One sector-aligned 4 KiB run in the middle of the app, changed byte
	// for byte: a small code change that does not move what follows.
	changed := append([]byte(nil), im.data...)
	const at = 0x80000
	for i := at; i < at+4096; i++ {
		changed[i] ^= 0x5A
	}
	settle()
	if rf.changed, err = flashOurs(ctx, dev.addr, appAddr, changed, reflashAt); err != nil {
		return nil, fmt.Errorf("re-flash, 4 KiB changed: %w", err)
	}
	rep := rf.changed.report[0]
	rf.changedSectors = imageSize/4096 - rep.SectorsSkipped
	if rep.State != flasher.StateVerified {
		return nil, fmt.Errorf("re-flash with 4 KiB changed: region %s, want %s", rep.State, flasher.StateVerified)
	}
	return rf, dev.check(appAddr, changed)
}

func printReflash(refl []*reflash) {
	if len(refl) == 0 {
		return
	}
	fmt.Printf("\n2. Re-flash at %d baud onto the device just flashed (connect and stub included), as a share of the first flash.\n", reflashAt)
	fmt.Printf("   Goals: same image < %.0f%%, one 4 KiB sector changed (at app offset 0x80000) < %.0f%%.\n\n", 100*goalReflash, 100*goalChanged)
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "image\tfirst\tsame image\tshare\t\t4 KiB changed\tshare\t\tsectors written\t")
	for _, r := range refl {
		s1 := r.same.d.Seconds() / r.first.d.Seconds()
		s2 := r.changed.d.Seconds() / r.first.d.Seconds()
		fmt.Fprintf(w, "%s\t%.2f s\t%.2f s\t%.2f%%\t%s\t%.2f s\t%.2f%%\t%s\t%d\t\n", r.img.name, r.first.d.Seconds(),
			r.same.d.Seconds(), 100*s1, mark(s1 < goalReflash), r.changed.d.Seconds(), 100*s2, mark(s2 < goalChanged), r.changedSectors)
	}
	w.Flush()
	fmt.Println()
	for _, r := range refl {
		fmt.Printf("   %s\n     same image:    %s\n     4 KiB changed: %s\n", r.img.name,
			formatPhases(r.same.phases), formatPhases(r.changed.phases))
	}
}
