package flasher

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/mos-tool/mos/port"
)

const (
	sectorSize = 4 << 10
	chunkSize  = 64 << 10
	// stubBlock is the flasher stub's data block; the ROMs take 0x400.
	stubBlock = 0x4000
	romBlock  = 0x400
)

// Region is data to put on flash at Addr.
type Region struct {
	Name string
	Addr uint32
	Data []byte
	// OwnsSectors says the rest of the region's first and last 4 KiB
	// sectors is its own slack (a firmware part inside its partition, as
	// a build lays it out), so nothing there is kept or reported as lost:
	// the sectors are erased and written as esptool writes such parts.
	OwnsSectors bool
}

// Region states in a report.
const (
	StateVerified   = "verified"   // written now, MD5 matched
	StateUnchanged  = "unchanged"  // flash already held it (MD5 matched), nothing written
	StateUnverified = "unverified" // written, but this loader cannot compute MD5 (ESP8266 ROM)
	StateFailed     = "failed"     // writing or verification failed
	StatePending    = "pending"    // not reached (an earlier error or interruption)
)

// RegionReport says what happened to one region.
type RegionReport struct {
	Name           string `json:"name"`
	Addr           uint32 `json:"addr"`
	Size           int    `json:"size"`
	State          string `json:"state"`
	BytesWritten   int    `json:"bytes_written"`   // uncompressed bytes put on flash
	BytesSent      int    `json:"bytes_sent"`      // data bytes sent over the wire
	SectorsSkipped int    `json:"sectors_skipped"` // 4 KiB sectors found unchanged
	// BytesKept counts the bytes around a region that does not fill its
	// first or last 4 KiB sector: read from flash and written back as
	// they were, so that only the region changes.
	BytesKept int `json:"bytes_kept,omitempty"`
	// BytesErased counts the bytes around such a region that were erased
	// instead (WriteOptions.NoPreserve).
	BytesErased int `json:"bytes_erased,omitempty"`
	// Restarts counts writes started again, from what the flash was found
	// to hold, after a lost or garbled reply or a failed verification.
	Restarts int `json:"restarts,omitempty"`
	// BlocksResent counts data blocks the device refused as garbled (bad
	// checksum) and that were sent again.
	BlocksResent int    `json:"blocks_resent,omitempty"`
	MD5          string `json:"md5"`
	Error        string `json:"error,omitempty"`
}

// Progress receives write progress: stage ("writing", "verifying"),
// region name, bytes done and total.
type Progress func(stage, part string, done, total int64)

// WriteOptions control WriteRegions.
type WriteOptions struct {
	// Force writes every region even when flash already holds it.
	Force bool
	// NoCompress sends data uncompressed (always so on the ESP8266 ROM).
	NoCompress bool
	// NoPreserve lets a region that starts or ends inside a 4 KiB sector
	// erase the rest of that sector (Warn states the loss before the
	// write). By default those bytes are read and written back, so that
	// only the region's bytes change; a loader that cannot read flash
	// (the ESP8266 ROM) then refuses such a region.
	NoPreserve bool
	Progress   Progress
	// Warn receives what the user must be told: bytes NoPreserve is about
	// to erase, a write restarted after a lost or garbled reply.
	Warn func(msg string)
}

// WriteError is a write that did not complete; Report says which regions
// are verified and which are not.
type WriteError struct {
	Report []RegionReport
	Err    error
}

func (e *WriteError) Error() string {
	done := 0
	var failed *RegionReport
	for i := range e.Report {
		r := &e.Report[i]
		switch r.State {
		case StateVerified, StateUnchanged:
			done++
		case StateFailed:
			if failed == nil {
				failed = r
			}
		}
	}
	where := ""
	if failed != nil {
		where = fmt.Sprintf(" while writing %s at 0x%X", failed.Name, failed.Addr)
	}
	return fmt.Sprintf("flash write failed%s (%d of %d regions verified): %v", where, done, len(e.Report), e.Err)
}

func (e *WriteError) Unwrap() error { return e.Err }

// Hint: running again finishes the job; verified regions are skipped.
func (e *WriteError) Hint() string {
	h := "run the same command again: regions already on flash are verified and skipped, the rest is written"
	var inner interface{ Hint() string }
	if errors.As(e.Err, &inner) {
		h = inner.Hint() + "; " + h
	}
	return h
}

// LinkError is a write given up because the link kept losing or garbling
// replies: every restart from what the flash held failed too.
type LinkError struct {
	Region   string
	Addr     uint32
	Restarts int
	Err      error // the last failure
	// Silent: the device stopped answering altogether (reset, unplugged).
	Silent bool
}

func (e *LinkError) Error() string {
	if e.Silent {
		return fmt.Sprintf("the device stopped answering while %s at 0x%X was written (was it reset or unplugged?): %v", e.Region, e.Addr, e.Err)
	}
	after := ""
	if e.Restarts > 0 {
		after = fmt.Sprintf(" after %d restarts", e.Restarts)
	}
	return fmt.Sprintf("the serial link kept losing or garbling replies: gave up on %s at 0x%X%s (last: %v)", e.Region, e.Addr, after, e.Err)
}

func (e *LinkError) Unwrap() error { return e.Err }

// ExitCode is "no answer from the device".
func (e *LinkError) ExitCode() int { return 6 }

// Hint suggests what usually cures a noisy link.
func (e *LinkError) Hint() string {
	if e.Silent {
		return "check that the board is connected and was not reset"
	}
	return "check the USB cable and port, or try a lower rate (--baud 460800 or 115200)"
}

// PreserveError is a region that does not fill its first or last 4 KiB
// sector, on a loader that cannot read the flash to keep the rest.
type PreserveError struct {
	Region string
	Addr   uint32
	Size   int
	Chip   string
}

func (e *PreserveError) Error() string {
	return fmt.Sprintf("%s at 0x%X (%d bytes) does not start and end on a 4 KiB sector boundary, and the %s ROM loader cannot read flash: writing it would erase the rest of its sectors", e.Region, e.Addr, e.Size, e.Chip)
}

// Hint names the two ways forward.
func (e *PreserveError) Hint() string {
	return "run without --no-stub (the flasher stub reads the bytes around the region and keeps them), or pass --no-preserve to let the rest of those sectors be erased"
}

// ExitCode is "usage": nothing was written.
func (e *PreserveError) ExitCode() int { return 2 }

// VerifyError is a region whose flash MD5 differs from the data after
// writing it.
type VerifyError struct {
	Region    string
	Addr      uint32
	Want, Got string
}

func (e *VerifyError) Error() string {
	return fmt.Sprintf("verification of %s at 0x%X failed: flash MD5 %s, data MD5 %s", e.Region, e.Addr, e.Got, e.Want)
}

// ExitCode is "verification failed".
func (e *VerifyError) ExitCode() int { return 8 }

// CanMD5 reports whether the loader can hash flash (all but the ESP8266 ROM).
func (l *Loader) CanMD5() bool { return l.Stub || !l.Chip.IsESP8266() }

// CanCompress reports whether the loader takes FLASH_DEFL_* commands.
func (l *Loader) CanCompress() bool { return l.Stub || l.Chip.ROMHasDeflate }

// FlashMD5 returns the MD5 of size bytes of flash at addr.
func (l *Loader) FlashMD5(ctx context.Context, addr uint32, size int) ([16]byte, error) {
	var sum [16]byte
	if !l.CanMD5() {
		return sum, ErrUnsupported
	}
	r, err := l.Command(ctx, OpSPIFlashMD5, le(addr, uint32(size), 0, 0), 0, perMB(8*time.Second, size))
	if err != nil {
		return sum, fmt.Errorf("MD5 of flash at 0x%X: %w", addr, err)
	}
	switch len(r.Data) {
	case 16: // stub: raw digest
		copy(sum[:], r.Data)
	case 32: // ROM: lowercase hex
		if _, err := hex.Decode(sum[:], r.Data); err != nil {
			return sum, fmt.Errorf("MD5 reply %q: %w", r.Data, err)
		}
	default:
		return sum, fmt.Errorf("MD5 reply of %d bytes", len(r.Data))
	}
	return sum, nil
}

// canRead reports whether the loader can read flash back (all but the
// ESP8266 ROM).
func (l *Loader) canRead() bool { return l.Stub || l.Chip.ROMHasSlowRd }

// md5 is FlashMD5, sent again (a bounded number of times) after a lost or
// garbled reply: asking for a hash changes nothing on the device, so a
// resend is safe. (After a failed write the stub answers the next command
// with that failure, so an answer may be an error that says nothing about
// the hash.)
func (l *Loader) md5(ctx context.Context, addr uint32, size int) ([16]byte, error) {
	sum, err := l.FlashMD5(ctx, addr, size)
	for attempt := 1; attempt < md5Attempts && err != nil && recoverable(ctx, err); attempt++ {
		l.Flush()
		sum, err = l.FlashMD5(ctx, addr, size)
	}
	return sum, err
}

// recoverable reports whether a failed command may be tried again: not
// after cancellation, nor when the loader said it does not know the
// command, nor when the port is gone.
func recoverable(ctx context.Context, err error) bool {
	return ctx.Err() == nil && !errors.Is(err, ErrUnsupported) &&
		!errors.Is(err, port.ErrClosed) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrClosedPipe)
}

// perMB scales a timeout by data size, never below DefaultTimeout.
func perMB(per time.Duration, size int) time.Duration {
	t := time.Duration(float64(per) * float64(size) / 1e6)
	return max(t, DefaultTimeout)
}

// WriteRegions puts each region on flash and verifies it. Unless Force is
// set, it first compares the flash with the data (MD5 of the region, then
// of 64 KiB chunks, then of 4 KiB sectors) and writes only what differs.
// A region that does not fill its first or last sector is widened to whole
// sectors with what the flash holds around it (unless NoPreserve). A write
// whose reply is lost or garbled is started again from what the flash is
// found to hold. The report covers every region, also on error (then in a
// *WriteError).
func (l *Loader) WriteRegions(ctx context.Context, regions []Region, opt WriteOptions) ([]RegionReport, error) {
	reports := make([]RegionReport, len(regions))
	for i, r := range regions {
		reports[i] = RegionReport{Name: r.Name, Addr: r.Addr, Size: len(r.Data), State: StatePending}
	}
	// Refuse before writing anything, not after the first regions.
	if !opt.NoPreserve && !l.canRead() {
		for _, r := range regions {
			if head, tail := around(r); head+tail > 0 {
				return reports, &PreserveError{Region: r.Name, Addr: r.Addr, Size: len(r.Data), Chip: l.Chip.Name}
			}
		}
	}
	for i, r := range regions {
		rep := &reports[i]
		sum := md5.Sum(r.Data)
		rep.MD5 = hex.EncodeToString(sum[:])
		if err := l.writeRegion(ctx, r, sum, rep, opt); err != nil {
			var de *DeviceError
			var le *LinkError
			var ve *VerifyError
			if recoverable(ctx, err) && !errors.As(err, &de) && !errors.As(err, &le) && !errors.As(err, &ve) {
				// a hash or read whose every reply was lost or garbled
				err = &LinkError{Region: r.Name, Addr: r.Addr, Restarts: rep.Restarts, Err: err}
			}
			rep.State = StateFailed
			rep.Error = err.Error()
			return reports, &WriteError{Report: reports, Err: err}
		}
	}
	return reports, nil
}

// around returns how many bytes of a region's first sector lie before it
// and of its last sector after it that are not its own: none for an empty
// region or one that owns its sectors.
func around(r Region) (head, tail int) {
	if len(r.Data) == 0 || r.OwnsSectors {
		return 0, 0
	}
	head = int(r.Addr % sectorSize)
	end := int(r.Addr%sectorSize) + len(r.Data)
	tail = (sectorSize - end%sectorSize) % sectorSize
	return head, tail
}

func (l *Loader) writeRegion(ctx context.Context, r Region, sum [16]byte, rep *RegionReport, opt WriteOptions) error {
	progress := opt.Progress
	if progress == nil {
		progress = func(string, string, int64, int64) {}
	}
	warn := opt.Warn
	if warn == nil {
		warn = func(string) {}
	}
	if len(r.Data) == 0 {
		rep.State = StateUnchanged
		return nil
	}
	// w is what goes on flash: the region, or the region widened to whole
	// sectors with the bytes the flash holds around it.
	w, wsum := r, sum
	head, tail := around(r)
	if head+tail > 0 && !opt.NoPreserve {
		if !opt.Force && l.CanMD5() {
			// already there: no need to read around it
			got, err := l.md5(ctx, r.Addr, len(r.Data))
			if err != nil {
				return err
			}
			if got == sum {
				rep.State = StateUnchanged
				rep.SectorsSkipped = (head + len(r.Data) + tail) / sectorSize
				progress("unchanged", r.Name, int64(len(r.Data)), int64(len(r.Data)))
				return nil
			}
		}
		data, err := l.widen(ctx, r, head, tail)
		if err != nil {
			return err
		}
		w = Region{Name: r.Name, Addr: r.Addr - uint32(head), Data: data}
		wsum = md5.Sum(data)
		rep.BytesKept = head + tail
	}
	var ranges []span
	if !opt.Force && l.CanMD5() {
		var err error
		ranges, err = l.diff(ctx, w, wsum)
		if err != nil {
			return err
		}
		total := (len(w.Data) + sectorSize - 1) / sectorSize
		written := 0
		for _, s := range ranges {
			written += (s.len() + sectorSize - 1) / sectorSize
		}
		rep.SectorsSkipped = total - written
		if len(ranges) == 0 {
			rep.State = StateUnchanged
			progress("unchanged", r.Name, int64(len(r.Data)), int64(len(r.Data)))
			return nil
		}
	} else {
		ranges = []span{{0, len(w.Data)}}
	}
	if opt.NoPreserve && head+tail > 0 {
		lost := lostAround(w, ranges, head, tail)
		if lost.n > 0 {
			warn(fmt.Sprintf("%s at 0x%X does not fill its 4 KiB sectors; --no-preserve: %s will be erased", r.Name, r.Addr, lost.text))
			rep.BytesErased = lost.n
		}
	}
	if err := l.putSpans(ctx, w, ranges, !opt.NoCompress && l.CanCompress(), rep, progress, warn); err != nil {
		return err
	}
	if !l.CanMD5() {
		rep.State = StateUnverified
		return nil
	}
	rep.State = StateVerified
	return nil
}

// widen reads the bytes of r's first sector before it and of its last
// sector after it, and returns the data for the whole sectors.
func (l *Loader) widen(ctx context.Context, r Region, head, tail int) ([]byte, error) {
	out := make([]byte, 0, head+len(r.Data)+tail)
	if head > 0 {
		b, err := l.readChecked(ctx, r.Addr-uint32(head), head)
		if err != nil {
			return nil, fmt.Errorf("reading the %d bytes before %s to keep them: %w", head, r.Name, err)
		}
		out = append(out, b...)
	}
	out = append(out, r.Data...)
	if tail > 0 {
		end := r.Addr + uint32(len(r.Data))
		b, err := l.readChecked(ctx, end, tail)
		if err != nil {
			return nil, fmt.Errorf("reading the %d bytes after %s to keep them: %w", tail, r.Name, err)
		}
		out = append(out, b...)
	}
	return out, nil
}

// readChecked reads flash and checks what arrived against the device's
// MD5 of the same bytes: the ROM's READ_FLASH_SLOW replies carry no
// checksum, and bytes garbled on the way would be written back as if
// they had been there. It reads in pieces of readPiece bytes, each tried
// again (reading changes nothing) a bounded number of times, so that a
// noisy line need not carry a whole sector intact in one go.
func (l *Loader) readChecked(ctx context.Context, addr uint32, n int) ([]byte, error) {
	out := make([]byte, 0, n)
	for len(out) < n {
		at := addr + uint32(len(out))
		k := min(readPiece, n-len(out))
		var b []byte
		var err error
		for attempt := 0; attempt < readAttempts; attempt++ {
			if attempt > 0 && l.Stub {
				l.endRead(ctx)
			} else if attempt > 0 {
				l.Flush()
			}
			b, err = l.ReadFlash(ctx, at, k, nil)
			if err == nil && l.CanMD5() {
				var sum [16]byte
				if sum, err = l.md5(ctx, at, k); err == nil && sum != md5.Sum(b) {
					err = fmt.Errorf("the bytes read at 0x%X differ from the flash's MD5 of them", at)
				}
			}
			if err == nil || !recoverable(ctx, err) {
				break
			}
		}
		var ve *VerifyError
		if errors.As(err, &ve) {
			// not the flash failing to keep data: the bytes came garbled
			err = fmt.Errorf("the bytes read at 0x%X kept arriving garbled (%v)", at, err)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

// readChecked reads readPiece bytes at a time, each at most readAttempts
// times (a short read costs little; a noisy line needs a few goes).
const (
	readPiece    = 256
	readAttempts = 5
)

type loss struct {
	n    int
	text string
}

// lostAround says which bytes around an unaligned region writing ranges
// of it erases: those before it when the first range starts at the
// region, those after it when the last range ends with it.
func lostAround(r Region, ranges []span, head, tail int) loss {
	var parts []string
	var l loss
	if head > 0 && ranges[0].from == 0 {
		from := r.Addr - uint32(head)
		parts = append(parts, fmt.Sprintf("the %d bytes at 0x%X-0x%X before it", head, from, r.Addr-1))
		l.n += head
	}
	if last := ranges[len(ranges)-1]; tail > 0 && last.to == len(r.Data) {
		end := r.Addr + uint32(len(r.Data))
		parts = append(parts, fmt.Sprintf("the %d bytes at 0x%X-0x%X after it", tail, end, end+uint32(tail)-1))
		l.n += tail
	}
	switch len(parts) {
	case 1:
		l.text = parts[0]
	case 2:
		l.text = parts[0] + " and " + parts[1]
	}
	return l
}

// Recovery bounds: a span is given up after maxStalls restarts in a row
// that got no further, or maxRestarts in all; a hash or a read is asked
// for at most md5Attempts times.
const (
	maxStalls   = 5
	maxRestarts = 32
	md5Attempts = 3
)

// putSpans writes the spans of w, verifying each by MD5 where the loader
// can. A data block whose reply is lost or garbled cannot simply be sent
// again: the stub does not look at sequence numbers, so the copy would be
// written (or inflated) a second time. Instead the span is checked by MD5
// and what still differs is written with a fresh FLASH_BEGIN or
// FLASH_DEFL_BEGIN. Where nothing can be checked (the ESP8266 ROM), the
// span is written again from its start; FLASH_BEGIN erases it first.
func (l *Loader) putSpans(ctx context.Context, w Region, spans []span, compress bool, rep *RegionReport, progress Progress, warn func(string)) error {
	total := 0
	for _, s := range spans {
		total += s.len()
	}
	done, stalls, restarts := 0, 0, 0
	todo := append([]span(nil), spans...)
	for len(todo) > 0 {
		s := todo[0]
		addr := w.Addr + uint32(s.from)
		data := w.Data[s.from:s.to]
		base := done
		sent, err := l.writeSpan(ctx, addr, data, compress, func(n int) { progress("writing", w.Name, int64(base+n), int64(total)) }, &rep.BlocksResent)
		rep.BytesSent += sent
		if err == nil && l.CanMD5() {
			progress("verifying", w.Name, int64(base), int64(total))
			err = l.verifySpan(ctx, w.Name, addr, data)
			if err == nil {
				// The MD5 is one command: its reply is the only progress.
				progress("verifying", w.Name, int64(base+s.len()), int64(total))
			}
		}
		if err == nil {
			rep.BytesWritten += s.len()
			done += s.len()
			todo = todo[1:]
			stalls = 0
			continue
		}
		if !recoverable(ctx, err) {
			return err
		}
		if stalls >= maxStalls || restarts >= maxRestarts {
			var ve *VerifyError
			if errors.As(err, &ve) {
				return err // the flash does not keep what is written
			}
			return &LinkError{Region: w.Name, Addr: addr, Restarts: restarts, Err: err}
		}
		restarts++
		rep.Restarts++
		var rest []span
		for {
			if !l.answers(ctx) {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				return &LinkError{Region: w.Name, Addr: addr, Restarts: restarts, Err: err, Silent: true}
			}
			var cerr error
			if rest, cerr = l.recheck(ctx, w, s, err); cerr == nil {
				break
			}
			if !recoverable(ctx, cerr) {
				return cerr
			}
			if stalls++; stalls >= maxStalls {
				return &LinkError{Region: w.Name, Addr: addr, Restarts: restarts, Err: fmt.Errorf("%v; then checking the flash: %w", err, cerr)}
			}
		}
		left := 0
		for _, r := range rest {
			left += r.len()
		}
		if left >= s.len() {
			stalls++
		} else {
			stalls = 0
		}
		got := s.len() - left
		rep.BytesWritten += got
		done += got
		resume := "nothing of it is on flash yet"
		if len(rest) > 0 && left < s.len() {
			resume = fmt.Sprintf("continuing at 0x%X", w.Addr+uint32(rest[0].from))
		} else if len(rest) == 0 {
			resume = "the flash holds it all"
		}
		if !l.CanMD5() {
			resume = fmt.Sprintf("from 0x%X, the sector of the first block not acknowledged; this loader cannot check what arrived", w.Addr+uint32(rest[0].from))
		}
		warn(fmt.Sprintf("writing %s at 0x%X: %v; restarting (%s)", w.Name, addr, err, resume))
		todo = append(rest, todo[1:]...)
	}
	return nil
}

// verifySpan compares the flash at addr with data by MD5.
func (l *Loader) verifySpan(ctx context.Context, name string, addr uint32, data []byte) error {
	want := md5.Sum(data)
	got, err := l.md5(ctx, addr, len(data))
	if err != nil {
		return err
	}
	if got != want {
		return &VerifyError{Region: name, Addr: addr, Want: hex.EncodeToString(want[:]), Got: hex.EncodeToString(got[:])}
	}
	return nil
}

// recheck finds the parts of span s of w that the flash does not hold
// after a failed write (err), by MD5 as the skip-unchanged comparison
// does. Without MD5 (the ESP8266 ROM) the write starts again at the
// sector of the first block the ROM did not acknowledge: FLASH_BEGIN
// erases from there, so whatever that block did is overwritten.
func (l *Loader) recheck(ctx context.Context, w Region, s span, err error) ([]span, error) {
	l.Flush()
	if !l.CanMD5() {
		from := s.from
		var re *romWriteError
		if errors.As(err, &re) {
			at := (w.Addr + uint32(s.from+re.confirmed)) &^ (sectorSize - 1)
			from = max(s.from, int(at-w.Addr))
		}
		return []span{{from, s.to}}, nil
	}
	sub := Region{Name: w.Name, Addr: w.Addr + uint32(s.from), Data: w.Data[s.from:s.to]}
	rest, err := l.diff(ctx, sub, md5.Sum(sub.Data))
	if err != nil {
		return nil, err
	}
	for i := range rest {
		rest[i].from += s.from
		rest[i].to += s.from
	}
	return rest, nil
}

// blankMD5 is the MD5 of n bytes of erased flash (0xFF), computed without
// holding n bytes.
func blankMD5(n int) [16]byte {
	var ff [4096]byte
	for i := range ff {
		ff[i] = 0xFF
	}
	h := md5.New()
	for n > 0 {
		k := min(n, len(ff))
		h.Write(ff[:k])
		n -= k
	}
	var out [16]byte
	h.Sum(out[:0])
	return out
}

// span is a byte range [from, to) of a region.
type span struct{ from, to int }

func (s span) len() int { return s.to - s.from }

// diff finds the sector-aligned spans of a region whose flash contents
// differ from the data. A region is compared whole first, then in 64 KiB
// chunks; a chunk that reads as erased flash is written whole without
// looking at its sectors; otherwise its 4 KiB sectors are compared.
func (l *Loader) diff(ctx context.Context, r Region, sum [16]byte) ([]span, error) {
	got, err := l.md5(ctx, r.Addr, len(r.Data))
	if err != nil {
		return nil, err
	}
	if got == sum {
		return nil, nil
	}
	if got == blankMD5(len(r.Data)) {
		// erased flash (a new board, or after an erase): all of it differs
		return []span{{0, len(r.Data)}}, nil
	}
	var out []span
	add := func(from, to int) {
		if n := len(out); n > 0 && out[n-1].to == from {
			out[n-1].to = to
			return
		}
		out = append(out, span{from, to})
	}
	// Spans start where the region does, then follow sector boundaries of
	// the flash (the region's address need not be sector aligned).
	lead := int(sectorSize-r.Addr%sectorSize) % sectorSize
	bounds := func(step int) []span {
		var s []span
		from := 0
		if lead > 0 {
			s = append(s, span{0, min(lead, len(r.Data))})
			from = lead
		}
		for ; from < len(r.Data); from += step {
			s = append(s, span{from, min(from+step, len(r.Data))})
		}
		return s
	}
	equal := func(s span) (bool, bool, error) {
		data := r.Data[s.from:s.to]
		h, err := l.md5(ctx, r.Addr+uint32(s.from), s.len())
		if err != nil {
			return false, false, err
		}
		return h == md5.Sum(data), h == blankMD5(s.len()), nil
	}
	for _, c := range bounds(chunkSize) {
		same, blank, err := equal(c)
		if err != nil {
			return nil, err
		}
		if same {
			continue
		}
		if blank || c.len() <= sectorSize {
			add(c.from, c.to)
			continue
		}
		for from := c.from; from < c.to; {
			to := min(c.to, (int(r.Addr)+from)/sectorSize*sectorSize+sectorSize-int(r.Addr))
			s := span{from, to}
			same, _, err := equal(s)
			if err != nil {
				return nil, err
			}
			if !same {
				add(s.from, s.to)
			}
			from = to
		}
	}
	return out, nil
}

// writeSpan writes data at addr (compressed when possible) and returns the
// number of data bytes sent. progress gets uncompressed bytes done.
func (l *Loader) writeSpan(ctx context.Context, addr uint32, data []byte, compress bool, progress func(int), resent *int) (int, error) {
	block := stubBlock
	if !l.Stub {
		block = romBlock
	}
	switch {
	case compress && l.Stub:
		return l.writeDeflatedStream(ctx, addr, data, block, progress, resent)
	case compress:
		return l.writeDeflatedROM(ctx, addr, data, block, progress, resent)
	}
	return l.writePlain(ctx, addr, data, block, progress, resent)
}

// flashBeginArgs is FLASH_BEGIN's (and FLASH_DEFL_BEGIN's) payload; newer
// ROMs take a fifth word, "encrypted", which stubs do not.
func (l *Loader) flashBeginArgs(eraseSize, blocks, block, addr uint32) []byte {
	if !l.Stub && l.Chip.ROMEncWord {
		return le(eraseSize, blocks, block, addr, 0)
	}
	return le(eraseSize, blocks, block, addr)
}

// writeDeflatedROM writes through a ROM's FLASH_DEFL_*: the ROM erases the
// whole region up front and writes each block before it answers, so the
// block count must be exact and the image is compressed first.
func (l *Loader) writeDeflatedROM(ctx context.Context, addr uint32, data []byte, block int, progress func(int), resent *int) (int, error) {
	var zb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zb, zlib.BestCompression)
	zw.Write(data)
	if err := zw.Close(); err != nil {
		return 0, err
	}
	comp := zb.Bytes()
	blocks := (len(comp) + block - 1) / block
	// The ROM erases in whole blocks of the write size.
	eraseSize := uint32((len(data) + block - 1) / block * block)
	begin := l.flashBeginArgs(eraseSize, uint32(blocks), uint32(block), addr)
	if _, err := l.Command(ctx, OpFlashDeflBegin, begin, 0, perMB(30*time.Second, int(eraseSize))); err != nil {
		return 0, fmt.Errorf("FLASH_DEFL_BEGIN at 0x%X: %w", addr, err)
	}
	sent := 0
	// Track how much uncompressed data each block carries, for progress
	// and for the per-block timeout.
	per := make([]int, blocks)
	if blocks > 0 {
		for i := range per {
			per[i] = len(data) / blocks
		}
		per[blocks-1] += len(data) % blocks
	}
	done := 0
	for seq := 0; seq < blocks; seq++ {
		chunk := comp[seq*block : min(len(comp), (seq+1)*block)]
		timeout := perMB(40*time.Second, 2*per[seq])
		if err := l.dataBlock(ctx, OpFlashDeflData, chunk, seq, timeout, resent); err != nil {
			return sent, fmt.Errorf("block %d of %d at 0x%X: %w", seq+1, blocks, addr, err)
		}
		sent += len(chunk)
		done += per[seq]
		progress(done)
	}
	return sent, nil // the ROM: FLASH_DEFL_END would leave the loader
}

func (l *Loader) writePlain(ctx context.Context, addr uint32, data []byte, block int, progress func(int), resent *int) (int, error) {
	blocks := (len(data) + block - 1) / block
	eraseSize := uint32(len(data))
	beginTimeout := DefaultTimeout
	if !l.Stub {
		beginTimeout = perMB(30*time.Second, len(data))
		if l.Chip.IsESP8266() {
			eraseSize = esp8266EraseSize(addr, uint32(len(data)))
		}
	}
	begin := l.flashBeginArgs(eraseSize, uint32(blocks), uint32(block), addr)
	if _, err := l.Command(ctx, OpFlashBegin, begin, 0, beginTimeout); err != nil {
		return 0, fmt.Errorf("FLASH_BEGIN at 0x%X: %w", addr, err)
	}
	sent := 0
	for seq := 0; seq < blocks; seq++ {
		chunk := data[seq*block : min(len(data), (seq+1)*block)]
		if len(chunk) < block {
			// the last block is padded with erased-flash bytes
			chunk = append(append([]byte(nil), chunk...), bytes.Repeat([]byte{0xFF}, block-len(chunk))...)
		}
		if err := l.dataBlock(ctx, OpFlashData, chunk, seq, perMB(40*time.Second, 2*block), resent); err != nil {
			err = fmt.Errorf("block %d of %d at 0x%X: %w", seq+1, blocks, addr, err)
			if !l.Stub {
				err = &romWriteError{confirmed: seq * block, err: err}
			}
			return sent, err
		}
		sent += len(chunk)
		progress(min(len(data), (seq+1)*block))
	}
	if l.Stub {
		if _, err := l.Command(ctx, OpFlashEnd, le(1), 0, DefaultTimeout); err != nil {
			return sent, fmt.Errorf("FLASH_END at 0x%X: %w", addr, err)
		}
	}
	return sent, nil
}

// romWriteError is a plain ROM write that failed after the device had
// acknowledged the first confirmed bytes: a ROM writes each block before
// it answers (Espressif's serial protocol documentation), so those are on
// flash even where nothing can check them.
type romWriteError struct {
	confirmed int
	err       error
}

func (e *romWriteError) Error() string { return e.err.Error() }
func (e *romWriteError) Unwrap() error { return e.err }

// dataBlock sends one FLASH_DATA/FLASH_DEFL_DATA block. Only a block the
// device refused as garbled is sent again, as esptool does: such a block
// was dropped unwritten. (esp-flasher-stub, src/command_handler.c: a frame
// whose length does not match its header is answered "bad data length"
// before any handler runs, and s_flash_defl_data checks the checksum
// before it queues the write; an error left by the previous block's write
// comes back with another code.) After a lost reply, or any other answer,
// the device may have taken the block, and the stubs do not look at
// sequence numbers, so the caller restarts the span instead.
func (l *Loader) dataBlock(ctx context.Context, op byte, chunk []byte, seq int, timeout time.Duration, resent *int) error {
	payload := append(le(uint32(len(chunk)), uint32(seq), 0, 0), chunk...)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			*resent++
		}
		_, err = l.Command(ctx, op, payload, Checksum(chunk), timeout)
		if errors.Is(err, ErrUnsupported) {
			// a ROM answers a command it cannot make out (its op byte
			// garbled) as an unknown one; this one it knows
			return fmt.Errorf("the device did not recognise the data block (garbled on the way?): %v", err)
		}
		var de *DeviceError
		if !errors.As(err, &de) || !droppedGarbled(l.Stub, de.Status) {
			return err
		}
	}
	return err
}

// droppedGarbled: the answers to a block that arrived garbled, which the
// device drops without writing: the stubs' 0xC0 (bad data length) and
// 0xC1 (bad checksum), the ROMs' 01 05 (invalid message) and 01 07 (bad
// checksum) (esptool's error table).
func droppedGarbled(stub bool, s [2]byte) bool {
	if stub {
		return s[0] == 0xC0 || s[0] == 0xC1
	}
	return s[0] == 0x01 && (s[1] == 0x05 || s[1] == 0x07)
}

// esp8266EraseSize compensates the ESP8266 ROM's erase quirk: asked to
// erase N sectors it erases N plus the sectors up to the next 64 KiB
// boundary (at most N more), so ask for fewer.
func esp8266EraseSize(offset, size uint32) uint32 {
	const perBlock = 16
	n := (size + sectorSize - 1) / sectorSize
	start := offset / sectorSize
	head := perBlock - start%perBlock
	if n < head {
		head = n
	}
	if n < 2*head {
		return (n + 1) / 2 * sectorSize
	}
	return (n - head) * sectorSize
}

// writeDeflatedStream compresses while it sends, so that a large image is
// never held twice in memory. The stub takes the block count of
// FLASH_DEFL_BEGIN as an upper bound, so the count announced is what the
// data could take at worst (deflate adds at most a few bytes per 16 KiB).
func (l *Loader) writeDeflatedStream(ctx context.Context, addr uint32, data []byte, block int, progress func(int), resent *int) (int, error) {
	bound := len(data) + len(data)/1000 + 64
	blocks := (bound + block - 1) / block
	begin := l.flashBeginArgs(uint32(len(data)), uint32(blocks), uint32(block), addr)
	if _, err := l.Command(ctx, OpFlashDeflBegin, begin, 0, DefaultTimeout); err != nil {
		return 0, fmt.Errorf("FLASH_DEFL_BEGIN at 0x%X: %w", addr, err)
	}
	pr, pw := io.Pipe()
	in := &countingReader{r: bytes.NewReader(data)}
	go func() {
		zw, _ := zlib.NewWriterLevel(pw, zlib.BestCompression)
		_, err := io.Copy(zw, in)
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	// The stub may still be writing the previous block's data when the
	// next one arrives, so a block's timeout covers the uncompressed data
	// of both (as far as the compressor's intake tells).
	buf := make([]byte, block)
	sent := 0
	var lastIn, prevDelta int64
	timeout := DefaultTimeout
	for seq := 0; ; seq++ {
		n, err := io.ReadFull(pr, buf)
		if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			break
		}
		if err != nil && err != io.ErrUnexpectedEOF {
			return sent, err
		}
		now := in.n.Load()
		delta := now - lastIn
		lastIn = now
		timeout = perMB(40*time.Second, int(delta+prevDelta))
		prevDelta = delta
		if err := l.dataBlock(ctx, OpFlashDeflData, buf[:n], seq, timeout, resent); err != nil {
			return sent, fmt.Errorf("block %d at 0x%X: %w", seq+1, addr, err)
		}
		sent += n
		progress(min(int(now), len(data)))
		if n < block {
			break
		}
	}
	progress(len(data))
	if _, err := l.Command(ctx, OpFlashDeflEnd, le(1), 0, timeout); err != nil {
		return sent, fmt.Errorf("FLASH_DEFL_END at 0x%X: %w", addr, err)
	}
	return sent, nil
}

// countingReader counts what the compressor has taken, for progress.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n.Add(int64(n))
	return n, err
}
