package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
)

// The memory row: a whole-flash image, incompressible so that the
// compressed copy is as large as it gets.
const (
	memImageSize = flashSize
	memAddr      = 0
	memBaud      = 2000000
	mosBinary    = "bin/mos"
)

// memRuns: peak RSS varies by a few tens of MiB with when the collector
// happens to run, so each way is measured a few times and the worst kept.
const memRuns = 3

type memResult struct {
	how     string
	rss     int64 // bytes, the worst run; 0 when the platform does not say
	rssBest int64
	d       time.Duration // of the worst run; 0: not measured (note says why)
	note    string
}

// measureMemory flashes a 16 MiB image from a separate process against a
// device served by this one, and reads that process's peak RSS from its
// rusage: the device's own memory is not counted. The device runs with
// Fast timing (memory does not depend on timing; real timing would take
// minutes). Both the CLI (when it can flash) and the bare library are
// measured, so that what the CLI adds shows.
func measureMemory(ctx context.Context, tmp string) ([]*memResult, error) {
	img := randomImage(3, memImageSize)
	path := filepath.Join(tmp, "whole-flash.bin")
	if err := os.WriteFile(path, img, 0o644); err != nil {
		return nil, err
	}
	var out []*memResult
	if cliCanFlash(ctx) {
		res, err := memoryRun(ctx, img, func(addr string) []string {
			return []string{mosBinary, "flash", "--port", addr, "--baud", fmt.Sprint(memBaud), fmt.Sprintf("0x%x:%s", memAddr, path)}
		})
		if err != nil {
			// someone else's command in the making: report, measure the library
			res = &memResult{note: fmt.Sprintf("failed, not measured: %v", err)}
		}
		res.how = mosBinary + " flash"
		out = append(out, res)
	} else {
		out = append(out, &memResult{how: mosBinary + " flash", note: "no flash command yet, not measured"})
	}
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	res, err := memoryRun(ctx, img, func(addr string) []string {
		return []string{exe, "-child", "-port", addr, "-image", path, "-addr", fmt.Sprint(memAddr), "-baud", fmt.Sprint(memBaud)}
	})
	if err != nil {
		return nil, err
	}
	res.how = "library (bench -child)"
	return append(out, res), nil
}

// cliCanFlash reports whether bin/mos has a flash command. An unknown
// command with --help prints the root help and succeeds, so look for the
// command's own usage line.
func cliCanFlash(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, mosBinary, "flash", "--help").CombinedOutput()
	return err == nil && strings.Contains(string(out), "mos flash")
}

// memoryRun measures one way of flashing memRuns times.
func memoryRun(ctx context.Context, img []byte, argv func(addr string) []string) (*memResult, error) {
	var worst *memResult
	for range memRuns {
		res, err := memoryRunOnce(ctx, img, argv)
		if err != nil {
			return nil, err
		}
		if worst == nil {
			worst = res
			worst.rssBest = res.rss
			continue
		}
		worst.rssBest = min(worst.rssBest, res.rss)
		if res.rss > worst.rss {
			worst.rss, worst.d = res.rss, res.d
		}
	}
	return worst, nil
}

func memoryRunOnce(ctx context.Context, img []byte, argv func(addr string) []string) (*memResult, error) {
	dev, err := newDevice(ctx, true)
	if err != nil {
		return nil, err
	}
	defer dev.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	args := argv(dev.addr)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	hwm := watchHWM(cmd.Process.Pid)
	err = cmd.Wait()
	peak := hwm.Stop()
	if err != nil {
		return nil, fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, tail(out.String(), 20))
	}
	res := &memResult{d: time.Since(start)}
	if err := dev.check(memAddr, img); err != nil {
		return nil, fmt.Errorf("%s: %w", args[0], err)
	}
	res.rss = peak
	if res.rss == 0 {
		// no /proc: rusage, which may overstate (see hwmWatcher)
		res.rss, _ = maxRSS(cmd.ProcessState)
	}
	return res, nil
}

func printMemory(ms []*memResult) {
	fmt.Printf("\n3. Peak memory while flashing a %d MiB incompressible image at 0x%X, at %d baud (goal < %d MiB)\n",
		memImageSize>>20, memAddr, memBaud, goalMemoryMiB)
	fmt.Printf("   Peak RSS of the flashing process only (VmHWM of the child, polled); the device runs in this process,\n")
	fmt.Printf("   with Fast timing: memory does not depend on timing.\n\n")
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, m := range ms {
		switch {
		case m.d == 0:
			fmt.Fprintf(w, "   %s:\t%s\n", m.how, m.note)
		case m.rss == 0:
			fmt.Fprintf(w, "   %s:\tmax RSS not reported on this platform (took %.1f s)\n", m.how, m.d.Seconds())
		default:
			mib := float64(m.rss) / (1 << 20)
			fmt.Fprintf(w, "   %s:\tmax RSS %.1f MiB  %s  (worst of %d runs, best %.1f MiB; a run takes %.1f s)\n",
				m.how, mib, mark(mib < goalMemoryMiB), memRuns, float64(m.rssBest)/(1<<20), m.d.Seconds())
		}
	}
	w.Flush()
}

// runChild is the flashing process of the memory row: read the image from
// disk, as the CLI would, and flash it with the library.
func runChild(ctx context.Context, portAddr, image string, addr uint32, baud int) error {
	img, err := os.ReadFile(image)
	if err != nil {
		return err
	}
	p, err := port.Open(ctx, portAddr, port.DefaultBaud)
	if err != nil {
		return err
	}
	defer p.Close()
	l, err := flasher.Open(ctx, p, flasher.SessionOptions{Baud: baud})
	if err != nil {
		return err
	}
	if err := l.AttachFlash(ctx, flashSize); err != nil {
		return err
	}
	if _, err := l.WriteRegions(ctx, []flasher.Region{{Name: "image", Addr: addr, Data: img}}, flasher.WriteOptions{}); err != nil {
		return err
	}
	return flasher.HardReset().Run(ctx, p)
}
