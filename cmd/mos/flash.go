package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/fwbundle"
	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
)

// validate checks every flag before the board is touched.
func (o *flashOptions) validate() error {
	if err := o.resetOptions.validate(); err != nil {
		return err
	}
	c, err := o.forcedChip()
	if err != nil {
		return err
	}
	params := o.params()
	if err := params.Check(); err != nil {
		var pe *fwimage.FlashParamError
		if errors.As(err, &pe) {
			return fmt.Errorf("--flash-%s: %w", pe.Field, err)
		}
		return err
	}
	if c != nil {
		if err := params.CheckChip(c); err != nil {
			return fmt.Errorf("--flash-%s with --chip %s: %w", err.(*fwimage.FlashParamError).Field, c.Key, err)
		}
	}
	return nil
}

// forcedChip is the chip --chip names, or nil.
func (o *flashOptions) forcedChip() (*chips.Chip, error) {
	if o.chip == "" {
		return nil, nil
	}
	c, err := chips.ByKey(o.chip)
	if err != nil {
		return nil, fmt.Errorf("--chip: %w", err)
	}
	return c, nil
}

func (o *flashOptions) params() fwimage.FlashParams {
	return fwimage.FlashParams{Mode: o.flashMode, Size: o.flashSize, Freq: o.flashFreq}
}

// fastBaud is the rate flash commands work at unless --baud says otherwise.
const fastBaud = 921600

type flashOptions struct {
	resetOptions
	force     bool
	noStub    bool
	chip      string
	flashMode string
	flashSize string
	flashFreq string
	keepFS    bool
	// noPreserve lets ADDR:FILE regions that do not fill their 4 KiB
	// sectors erase the rest of them.
	noPreserve bool
}

func newFlashCmd(a *app) *cobra.Command {
	var o flashOptions
	cmd := &cobra.Command{
		Use:   "flash [BUNDLE.zip | flasher_args.json | ADDR:FILE ...]",
		Short: "Write firmware to the board's flash, verified, skipping what is already there",
		Long: "Write a firmware bundle (mos zip with manifest.json), ESP-IDF's flasher_args.json,\n" +
			"or ADDR:FILE pairs. The chip is detected, the flasher stub uploaded and the link\n" +
			"moved to a fast baud (921600 unless --baud says otherwise, lower when the link gives\n" +
			"errors). Each region is compared with the flash first and only what differs is\n" +
			"written, compressed; every region written is verified by MD5.\n\n" +
			"The bundle's data partitions (fs, nvs, ...) are written too, replacing the files\n" +
			"and settings the board holds there; mos names them before writing. --keep-fs\n" +
			"keeps them (an erased partition still gets the bundle's).",
		Example: "  mos flash firmware-images/esp32-demo.zip\n" +
			"  mos flash 0x1000:bootloader.bin 0x8000:partitions.bin 0x10000:app.bin\n" +
			"  mos flash build/flasher_args.json --baud 2000000",
		Args: usageArgs(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.validate(); err != nil {
				return usageErr(cmd, err)
			}
			baud := fastBaud
			if cmd.Flags().Changed("baud") {
				baud = a.opts.Baud
				if err := checkLoaderBaud(baud); err != nil {
					return usageErr(cmd, err)
				}
			}
			return runFlash(cmd.Context(), a, o, baud, args)
		},
	}
	o.addFlags(cmd)
	f := cmd.Flags()
	f.BoolVar(&o.force, "force", false, "write every region even when the flash already holds it")
	f.BoolVar(&o.noStub, "no-stub", false, "talk to the ROM loader only (slower; the ESP8266 ROM cannot verify)")
	f.StringVar(&o.chip, "chip", "", "treat the board as this chip instead of the detected one")
	f.StringVar(&o.flashMode, "flash-mode", "keep", "bootloader flash mode: keep, qio, qout, dio, dout")
	f.StringVar(&o.flashSize, "flash-size", "keep", "bootloader flash size: keep, detect, or e.g. 4MB")
	f.StringVar(&o.flashFreq, "flash-freq", "keep", "bootloader flash frequency: keep, 80m, 40m, 26m, 20m")
	f.BoolVar(&o.keepFS, "keep-fs", false, "keep the files and settings in the board's data partitions")
	f.BoolVar(&o.noPreserve, "no-preserve", false, "let a region that does not start and end on a 4 KiB sector boundary erase the rest of its sectors (by default they are read and kept)")
	return cmd
}

// flashResult is what `mos flash` reports, also (partly) when it fails.
type flashResult struct {
	Chip     string        `json:"chip"`
	Port     string        `json:"port"`
	Baud     int           `json:"baud"`
	Stub     bool          `json:"stub"`
	Seconds  float64       `json:"seconds"`
	Regions  []flashRegion `json:"regions"`
	Complete bool          `json:"complete"`
	// DataReplaced and DataKept name the parts in the board's data
	// partitions (files, settings) that this run replaced or, with
	// --keep-fs, left alone.
	DataReplaced []string `json:"data_replaced"`
	DataKept     []string `json:"data_kept"`
}

// flashRegion is a region's report and, for a part in a data partition,
// what became of the board's data: "replaced", "kept", "same", "blank".
type flashRegion struct {
	flasher.RegionReport
	Data string `json:"data,omitempty"`
}

// replacedData reports whether the region was written over data of the
// board's own (or data that may have been: DataUnknown).
func (r flashRegion) replacedData() bool {
	return (r.Data == fwbundle.DataReplaced || r.Data == fwbundle.DataUnknown) &&
		(r.State == flasher.StateVerified || r.State == flasher.StateUnverified)
}

func (r flashResult) Data() any { return r }

func (r flashResult) Text() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	// STATE last: it is the one column that may be long, and a narrow
	// terminal then wraps only the end of a row.
	fmt.Fprintf(tw, "REGION\tADDRESS\tSIZE\tSENT\tSTATE\n")
	written := 0
	for _, reg := range r.Regions {
		state := reg.State
		if reg.State == flasher.StateVerified && reg.SectorsSkipped > 0 {
			state = fmt.Sprintf("verified, %d sectors unchanged", reg.SectorsSkipped)
		}
		switch {
		case reg.replacedData():
			state += "; board's data replaced"
		case reg.Data == fwbundle.DataKept:
			state = "kept (--keep-fs)"
		}
		fmt.Fprintf(tw, "%s\t0x%06X\t%d\t%d\t%s\n", reg.Name, reg.Addr, reg.Size, reg.BytesSent, state)
		written += reg.BytesWritten
	}
	tw.Flush()
	verdict := "done"
	if !r.Complete {
		verdict = "INCOMPLETE"
	}
	fmt.Fprintf(&b, "%s: %s, %d bytes written in %.1f s at %d baud", verdict, r.Chip, written, r.Seconds, r.Baud)
	if len(r.DataReplaced) > 0 && r.Complete {
		fmt.Fprintf(&b, "\nreplaced the board's data in %s with the bundle's", strings.Join(r.DataReplaced, ", "))
	}
	return b.String()
}

func runFlash(ctx context.Context, a *app, o flashOptions, baud int, args []string) error {
	// Everything that can be checked without the board is checked first:
	// a corrupt bundle never gets as far as touching the flash.
	bundle, err := fwbundle.ParseInputs(args)
	if err != nil {
		return err
	}
	forced, _ := o.forcedChip() // checked by validate
	start := time.Now()
	p, l, err := openSession(ctx, a, o.resetOptions, baud, o.noStub)
	if err != nil {
		return err
	}
	defer p.Close()
	chip := l.Chip
	if forced != nil && forced != chip {
		a.out.Warnf("treating the detected %s as %s (--chip)", chip.Name, forced.Name)
		chip = forced
	}
	plan, err := planFlash(ctx, a, l, chip, bundle, fwbundle.PlanOptions{Params: o.params(), KeepData: o.keepFS})
	if err != nil {
		return err
	}
	announceData(a, plan, func(it string) string { return "--keep-fs keeps " + it })
	reports, werr := l.WriteRegions(ctx, planRegions(plan), flasher.WriteOptions{Force: o.force, NoPreserve: o.noPreserve,
		Progress: writeProgress(a), Warn: func(m string) { a.out.Warnf("%s", m) }})
	res := flashResult{Chip: chip.Name, Port: p.Name(), Baud: p.BaudRate(), Stub: l.Stub,
		Seconds: time.Since(start).Seconds(), Complete: werr == nil}
	res.Regions, res.DataReplaced, res.DataKept = planReport(plan, reports)
	for _, r := range reports {
		if r.State == flasher.StateUnverified {
			a.out.Warnf("%s at 0x%X was written but NOT verified: the %s ROM cannot compute MD5 (run without --no-stub to verify)", r.Name, r.Addr, chip.Name)
		}
	}
	if werr != nil {
		return output.WithResult(werr, res)
	}
	if err := finish(ctx, p, o.resetOptions); err != nil {
		return output.WithResult(err, res)
	}
	return a.out.Print(res)
}

// openSession opens the port and gets a loader ready at the working baud.
func openSession(ctx context.Context, a *app, o resetOptions, baud int, noStub bool) (port.Port, *flasher.Loader, error) {
	p, err := port.Open(ctx, a.opts.Port, port.DefaultBaud)
	if err != nil {
		return nil, nil, err
	}
	l, err := openLoader(ctx, a, p, sessionOptions(a, o.reset, baud, noStub))
	if err != nil {
		p.Close()
		return nil, nil, err
	}
	return p, l, nil
}

// openLoader runs flasher.Open on the progress display: connecting, the
// stub upload and the baud change each get a line with their time.
func openLoader(ctx context.Context, a *app, p port.Port, opts flasher.SessionOptions) (*flasher.Loader, error) {
	handReset(a, p, &opts.Connect)
	var l *flasher.Loader
	err := a.out.Task("connecting", "to "+p.Name(), func(step func(string, string)) error {
		opts.Step = func(what string) {
			stage, part, _ := strings.Cut(what, " ")
			step(stage, part)
		}
		var err error
		l, err = flasher.Open(ctx, p, opts)
		return err
	})
	return l, err
}

// sessionOptions are the flasher session settings every command uses:
// messages go through the printer, and a board that does not answer gets
// --timeout to be put into download mode by hand.
func sessionOptions(a *app, reset string, baud int, noStub bool) flasher.SessionOptions {
	return flasher.SessionOptions{
		Connect: flasher.ConnectOptions{
			Reset:      reset,
			ManualWait: a.opts.Timeout,
			Status:     func(m string) { a.out.Debugf("%s", m) },
			Prompt:     func(m string) { a.out.Infof("%s", m) },
		},
		Baud:   baud,
		NoStub: noStub,
		Warn:   func(m string) { a.out.Warnf("%s", m) },
	}
}

// flashSize reads the flash chip's size from its JEDEC ID.
func flashSize(ctx context.Context, a *app, l *flasher.Loader) (int, error) {
	id, err := l.FlashID(ctx)
	if err != nil {
		return 0, err
	}
	size := flasher.FlashSizeFromID(id)
	if size == 0 {
		a.out.Warnf("unknown flash ID 0x%06X: assuming 4 MiB", id)
		size = 4 << 20
	}
	return size, nil
}

// planFlash gets the flash ready for a bundle and works out what to
// write (fwbundle.Plan): the flash size is read from the chip, and the
// loader compares the bundle's data partitions with the board's when it
// can compute an MD5.
func planFlash(ctx context.Context, a *app, l *flasher.Loader, chip *chips.Chip, b *fwbundle.Bundle, o fwbundle.PlanOptions) (*fwbundle.Plan, error) {
	size, err := flashSize(ctx, a, l)
	if err != nil {
		return nil, err
	}
	if err := l.AttachFlash(ctx, size); err != nil {
		return nil, err
	}
	var dev fwbundle.FlashSummer
	if l.CanMD5() {
		dev = l
	}
	plan, err := b.Plan(ctx, chip, size, dev, o)
	if err != nil {
		return nil, flashParamFlag("mos flash", err, o.Params)
	}
	for _, w := range plan.Write {
		if w.Patched {
			a.out.Infof("%s: flash parameters set in the bootloader header (SHA-256 recomputed)", w.Name)
		}
	}
	return plan, nil
}

// announceData says, before anything is written, which of the board's
// data partitions the write replaces and which are kept; tail ends the
// warning (how to keep them), given "it" or "them".
func announceData(a *app, plan *fwbundle.Plan, tail func(it string) string) {
	if r := plan.Replaced(); len(r) > 0 {
		var names []string
		unknown := false
		for _, p := range r {
			names = append(names, partName(p))
			unknown = unknown || p.DataState == fwbundle.DataUnknown
		}
		verb, it := "holds", "it"
		if len(r) > 1 {
			verb, it = "hold", "them"
		}
		if unknown {
			verb = "may hold" // the loader cannot compute an MD5 to tell
		}
		a.out.Warnf("%s %s the board's own data (files, settings): this flash replaces %s with the bundle's; %s",
			strings.Join(names, ", "), verb, it, tail(it))
	}
	if len(plan.Kept) > 0 {
		var names []string
		for _, p := range plan.Kept {
			names = append(names, partName(p))
		}
		a.out.Infof("keeping the board's data in %s", strings.Join(names, ", "))
	}
}

func partName(p fwbundle.PlannedPart) string {
	if p.Partition != "" && p.Partition != p.Name {
		return fmt.Sprintf("%s (partition %s) at 0x%X", p.Name, p.Partition, p.Addr)
	}
	return fmt.Sprintf("%s at 0x%X", p.Name, p.Addr)
}

// planRegions are the plan's parts as the flasher takes them.
func planRegions(plan *fwbundle.Plan) []flasher.Region {
	var regions []flasher.Region
	for _, w := range plan.Write {
		regions = append(regions, flasher.Region{Name: w.Name, Addr: w.Addr, Data: w.Data, OwnsSectors: w.OwnsSectors})
	}
	return regions
}

// planReport joins the flasher's reports (one per region written, in
// order) with what the plan knew about data partitions.
func planReport(plan *fwbundle.Plan, reports []flasher.RegionReport) (rows []flashRegion, replaced, kept []string) {
	replaced, kept = []string{}, []string{}
	for i, rep := range reports {
		row := flashRegion{RegionReport: rep}
		if i < len(plan.Write) && plan.Write[i].Name == rep.Name {
			row.Data = plan.Write[i].DataState
			if row.replacedData() {
				replaced = append(replaced, rep.Name)
			}
		}
		rows = append(rows, row)
	}
	for _, k := range plan.Kept {
		rows = append(rows, flashRegion{RegionReport: flasher.RegionReport{Name: k.Name, Addr: k.Addr, Size: len(k.Data), State: fwbundle.DataKept}, Data: fwbundle.DataKept})
		kept = append(kept, k.Name)
	}
	slices.SortStableFunc(rows, func(x, y flashRegion) int { return cmp.Compare(x.Addr, y.Addr) })
	if rows == nil {
		rows = []flashRegion{}
	}
	return rows, replaced, kept
}

// flashParamFlag names the flag behind a flash setting the chip found
// cannot take; a setting the user did not give came from the bundle
// (flasher_args.json), which is then the bad input.
func flashParamFlag(cmd string, err error, asked fwimage.FlashParams) error {
	var pe *fwimage.FlashParamError
	if !errors.As(err, &pe) {
		return err
	}
	given := map[string]string{"mode": asked.Mode, "size": asked.Size, "freq": asked.Freq}[pe.Field]
	if given == "" || given == "keep" {
		return output.WithExitCode(fmt.Errorf("the firmware's flash settings: %w", err), output.ExitBadInput)
	}
	return &output.UsageError{Err: fmt.Errorf("--flash-%s: %w", pe.Field, err), Command: cmd}
}

// writeProgress renders the flasher's progress through the printer.
func writeProgress(a *app) flasher.Progress {
	progress := a.out.Progress()
	return func(stage, part string, done, total int64) {
		progress.Report(output.ProgressEvent{Stage: stage, Part: part, Done: done, Total: total})
	}
}

// handReset: a port without DTR/RTS (socket://) cannot reset the board, so
// rather than play reset sequences it cannot make and only then give up,
// mos says at once how to enter download mode by hand, and listens.
func handReset(a *app, p port.Port, opts *flasher.ConnectOptions) {
	if opts.Reset != "" && opts.Reset != string(flasher.ResetAuto) {
		return // asked for: flasher.Connect reports what it could not do
	}
	if err := p.SetDTR(false); !errors.Is(err, port.ErrNoControlLines) {
		return
	}
	opts.Reset = string(flasher.ResetNone)
	a.out.Infof("%s cannot reset the board (no DTR/RTS lines): put it into download mode by hand: "+
		"hold BOOT (IO0), press and release EN (RST), then release BOOT", p.Name())
}
