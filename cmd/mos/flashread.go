package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/sim"
)

// parseAddr reads 0x1000, 4096, 1M, 64K.
func parseAddr(s string) (uint32, error) {
	if v, err := strconv.ParseUint(s, 0, 32); err == nil {
		return uint32(v), nil
	}
	n, err := sim.ParseSize(s)
	if err != nil {
		return 0, fmt.Errorf("bad address or size %q (e.g. 0x10000, 4096, 1M)", s)
	}
	return uint32(n), nil
}

// maxFlashSize is the largest flash an ESP chip addresses (128 MiB, the
// largest size esptool's image headers encode), so that a range past it is
// refused before the board is touched; the board's own size is checked once
// it is known.
const maxFlashSize = 128 << 20

// checkFlashRange refuses a range that no flash holds.
func checkFlashRange(addr, size uint32) error {
	if uint64(addr)+uint64(size) > maxFlashSize {
		return fmt.Errorf("0x%X + %d is past the end of the largest flash (%d MiB)", addr, size, maxFlashSize>>20)
	}
	return nil
}

// checkOutputFile makes sure a file can be created under name before a
// long read: its folder exists and name is not a folder.
func checkOutputFile(name string) error {
	if fi, err := os.Stat(name); err == nil && fi.IsDir() {
		return fmt.Errorf("%s is a folder: give a file name", name)
	}
	dir := filepath.Dir(name)
	fi, err := os.Stat(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot write %s: there is no folder %s", name, dir)
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", name, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("cannot write %s: %s is not a folder", name, dir)
	}
	return nil
}

func newFlashReadCmd(a *app) *cobra.Command {
	var o resetOptions
	cmd := &cobra.Command{
		Use:   "flash-read ADDR SIZE FILE",
		Short: "Read flash contents into a file",
		Long: "Read SIZE bytes of flash at ADDR into FILE, through the flasher stub at a fast\n" +
			"baud. The data is checked against the flash's MD5 and FILE is written only\n" +
			"when the whole read is complete. ADDR and SIZE are decimal or 0x hex; SIZE may\n" +
			"end in K or M.",
		Example: "  mos flash-read 0x0 4M backup.bin",
		Args:    usageArgs(cobra.ExactArgs(3)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return usageErr(cmd, err)
			}
			addr, err := parseAddr(args[0])
			if err != nil {
				return usageErr(cmd, err)
			}
			size, err := parseAddr(args[1])
			if err != nil || size == 0 {
				return usageErr(cmd, fmt.Errorf("bad size %q", args[1]))
			}
			if err := checkFlashRange(addr, size); err != nil {
				return usageErr(cmd, err)
			}
			if err := checkOutputFile(args[2]); err != nil {
				return usageErr(cmd, err)
			}
			baud := fastBaud
			if cmd.Flags().Changed("baud") {
				baud = a.opts.Baud
				if err := checkLoaderBaud(baud); err != nil {
					return usageErr(cmd, err)
				}
			}
			return runFlashRead(cmd.Context(), a, o, baud, addr, int(size), args[2])
		},
	}
	o.addFlags(cmd)
	return cmd
}

type readResult struct {
	File string `json:"file"`
	Addr uint32 `json:"addr"`
	Size int    `json:"size"`
}

func (r readResult) Data() any { return r }
func (r readResult) Text() string {
	return fmt.Sprintf("read %d bytes at 0x%X into %s (MD5 checked)", r.Size, r.Addr, r.File)
}

func runFlashRead(ctx context.Context, a *app, o resetOptions, baud int, addr uint32, size int, file string) error {
	p, l, err := openSession(ctx, a, o, baud, false)
	if err != nil {
		return err
	}
	defer p.Close()
	fsize, err := flashSize(ctx, a, l)
	if err != nil {
		return err
	}
	if uint64(addr)+uint64(size) > uint64(fsize) {
		return output.WithExitCode(fmt.Errorf("0x%X + %d is past the end of the %d MiB flash", addr, size, fsize>>20), output.ExitUsage)
	}
	if err := l.AttachFlash(ctx, fsize); err != nil {
		return err
	}
	progress := a.out.Progress()
	data, err := l.ReadFlash(ctx, addr, size, func(stage, part string, done, total int64) {
		progress.Report(output.ProgressEvent{Stage: stage, Part: fmt.Sprintf("0x%X", addr), Done: done, Total: total})
	})
	if err != nil {
		return err
	}
	// Write to a temporary file and rename, so an interrupted read never
	// leaves a partial file under the name asked for.
	tmp, err := os.CreateTemp(filepath.Dir(file), "."+filepath.Base(file)+".*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := finish(ctx, p, o); err != nil {
		return err
	}
	return a.out.Print(readResult{File: file, Addr: addr, Size: size})
}

func newFlashEraseCmd(a *app) *cobra.Command {
	var o resetOptions
	cmd := &cobra.Command{
		Use:   "flash-erase [ADDR SIZE]",
		Short: "Erase the whole flash, or a range of it",
		Example: "  mos flash-erase --port /dev/ttyUSB0\n" +
			"  mos flash-erase --port /dev/ttyUSB0 0x9000 0x6000",
		Long: "Erase the whole flash chip, or SIZE bytes at ADDR (both multiples of 4 KiB),\n" +
			"through the flasher stub. A whole chip takes seconds and the chip reports\n" +
			"nothing until it is done, so the time taken is shown while it runs.",
		Args: usageArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) != 0 && len(args) != 2 {
				return fmt.Errorf("give no arguments (whole chip) or ADDR SIZE")
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return usageErr(cmd, err)
			}
			var addr, size uint32
			if len(args) == 2 {
				var err error
				if addr, err = parseAddr(args[0]); err != nil {
					return usageErr(cmd, err)
				}
				if size, err = parseAddr(args[1]); err != nil {
					return usageErr(cmd, err)
				}
				if addr%0x1000 != 0 || size%0x1000 != 0 || size == 0 {
					return usageErr(cmd, fmt.Errorf("ADDR and SIZE must be multiples of 4 KiB (0x1000)"))
				}
				if err := checkFlashRange(addr, size); err != nil {
					return usageErr(cmd, err)
				}
			}
			return runFlashErase(cmd.Context(), a, o, addr, int(size), len(args) == 0)
		},
	}
	o.addFlags(cmd)
	return cmd
}

type eraseResult struct {
	Whole bool   `json:"whole_chip"`
	Addr  uint32 `json:"addr"`
	Size  int    `json:"size"`
}

func (r eraseResult) Data() any { return r }
func (r eraseResult) Text() string {
	if r.Whole {
		return fmt.Sprintf("erased the whole flash (%d MiB)", r.Size>>20)
	}
	return fmt.Sprintf("erased %d bytes at 0x%X", r.Size, r.Addr)
}

func runFlashErase(ctx context.Context, a *app, o resetOptions, addr uint32, size int, whole bool) error {
	p, l, err := openSession(ctx, a, o, fastBaud, false)
	if err != nil {
		return err
	}
	defer p.Close()
	fsize, err := flashSize(ctx, a, l)
	if err != nil {
		return err
	}
	if err := l.AttachFlash(ctx, fsize); err != nil {
		return err
	}
	if whole {
		err := a.out.Task("erasing", fmt.Sprintf("the whole flash (%d MiB)", fsize>>20), func(func(string, string)) error {
			return l.EraseFlash(ctx)
		})
		if err != nil {
			return err
		}
		addr, size = 0, fsize
	} else {
		if uint64(addr)+uint64(size) > uint64(fsize) {
			return output.Usagef("0x%X + %d is past the end of the %d MiB flash", addr, size, fsize>>20)
		}
		err := a.out.Task("erasing", fmt.Sprintf("%d KiB at 0x%X", size>>10, addr), func(func(string, string)) error {
			return l.EraseRegion(ctx, addr, size)
		})
		if err != nil {
			return err
		}
	}
	if err := finish(ctx, p, o); err != nil {
		return err
	}
	return a.out.Print(eraseResult{Whole: whole, Addr: addr, Size: size})
}
