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
	MD5            string `json:"md5"`
	Error          string `json:"error,omitempty"`
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
	Progress   Progress
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
	return "run the same command again: regions already on flash are verified and skipped, the rest is written"
}

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

// perMB scales a timeout by data size, never below DefaultTimeout.
func perMB(per time.Duration, size int) time.Duration {
	t := time.Duration(float64(per) * float64(size) / 1e6)
	return max(t, DefaultTimeout)
}

// WriteRegions puts each region on flash and verifies it. Unless Force is
// set, it first compares the flash with the data (MD5 of the region, then
// of 64 KiB chunks, then of 4 KiB sectors) and writes only what differs.
// The report covers every region, also on error (then in a *WriteError).
func (l *Loader) WriteRegions(ctx context.Context, regions []Region, opt WriteOptions) ([]RegionReport, error) {
	reports := make([]RegionReport, len(regions))
	for i, r := range regions {
		reports[i] = RegionReport{Name: r.Name, Addr: r.Addr, Size: len(r.Data), State: StatePending}
	}
	for i, r := range regions {
		rep := &reports[i]
		sum := md5.Sum(r.Data)
		rep.MD5 = hex.EncodeToString(sum[:])
		if err := l.writeRegion(ctx, r, sum, rep, opt); err != nil {
			rep.State = StateFailed
			rep.Error = err.Error()
			return reports, &WriteError{Report: reports, Err: err}
		}
	}
	return reports, nil
}

func (l *Loader) writeRegion(ctx context.Context, r Region, sum [16]byte, rep *RegionReport, opt WriteOptions) error {
	progress := opt.Progress
	if progress == nil {
		progress = func(string, string, int64, int64) {}
	}
	var ranges []span
	if !opt.Force && l.CanMD5() {
		var err error
		ranges, err = l.diff(ctx, r, sum)
		if err != nil {
			return err
		}
		total := (len(r.Data) + sectorSize - 1) / sectorSize
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
		ranges = []span{{0, len(r.Data)}}
	}
	todo := 0
	for _, s := range ranges {
		todo += s.len()
	}
	done := 0
	for _, s := range ranges {
		sent, err := l.writeSpan(ctx, r.Addr+uint32(s.from), r.Data[s.from:s.to], !opt.NoCompress && l.CanCompress(),
			func(n int) { progress("writing", r.Name, int64(done+n), int64(todo)) })
		rep.BytesSent += sent
		if err != nil {
			return err
		}
		done += s.len()
		rep.BytesWritten += s.len()
	}
	if !l.CanMD5() {
		rep.State = StateUnverified
		return nil
	}
	// The sectors the diff found equal were verified by it; the spans
	// written now are checked one by one. Without a diff the whole region.
	check := ranges
	if opt.Force {
		check = []span{{0, len(r.Data)}}
	}
	progress("verifying", r.Name, 0, int64(len(r.Data)))
	for _, s := range check {
		data := r.Data[s.from:s.to]
		want := md5.Sum(data)
		if s.from == 0 && s.to == len(r.Data) {
			want = sum
		}
		got, err := l.FlashMD5(ctx, r.Addr+uint32(s.from), s.len())
		if err != nil {
			return err
		}
		if got != want {
			return &VerifyError{Region: r.Name, Addr: r.Addr + uint32(s.from), Want: hex.EncodeToString(want[:]), Got: hex.EncodeToString(got[:])}
		}
	}
	rep.State = StateVerified
	return nil
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
	got, err := l.FlashMD5(ctx, r.Addr, len(r.Data))
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
		h, err := l.FlashMD5(ctx, r.Addr+uint32(s.from), s.len())
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
func (l *Loader) writeSpan(ctx context.Context, addr uint32, data []byte, compress bool, progress func(int)) (int, error) {
	block := stubBlock
	if !l.Stub {
		block = romBlock
	}
	switch {
	case compress && l.Stub:
		return l.writeDeflatedStream(ctx, addr, data, block, progress)
	case compress:
		return l.writeDeflatedROM(ctx, addr, data, block, progress)
	}
	return l.writePlain(ctx, addr, data, block, progress)
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
func (l *Loader) writeDeflatedROM(ctx context.Context, addr uint32, data []byte, block int, progress func(int)) (int, error) {
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
		if err := l.dataBlock(ctx, OpFlashDeflData, chunk, seq, timeout); err != nil {
			return sent, fmt.Errorf("block %d of %d at 0x%X: %w", seq+1, blocks, addr, err)
		}
		sent += len(chunk)
		done += per[seq]
		progress(done)
	}
	return sent, nil // the ROM: FLASH_DEFL_END would leave the loader
}

func (l *Loader) writePlain(ctx context.Context, addr uint32, data []byte, block int, progress func(int)) (int, error) {
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
		if err := l.dataBlock(ctx, OpFlashData, chunk, seq, perMB(40*time.Second, 2*block)); err != nil {
			return sent, fmt.Errorf("block %d of %d at 0x%X: %w", seq+1, blocks, addr, err)
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

// dataBlock sends one FLASH_DATA/FLASH_DEFL_DATA block, retrying a block
// whose reply was lost or garbled with the same sequence number.
func (l *Loader) dataBlock(ctx context.Context, op byte, chunk []byte, seq int, timeout time.Duration) error {
	payload := append(le(uint32(len(chunk)), uint32(seq), 0, 0), chunk...)
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		_, err = l.Command(ctx, op, payload, Checksum(chunk), timeout)
		if err == nil || ctx.Err() != nil {
			return err
		}
		var de *DeviceError
		if errors.As(err, &de) && de.Status[0] != 0xC1 && !(de.Status[0] == 1 && de.Status[1] == 7) {
			return err // refused for a reason a retry does not fix
		}
		l.Flush()
	}
	return err
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
func (l *Loader) writeDeflatedStream(ctx context.Context, addr uint32, data []byte, block int, progress func(int)) (int, error) {
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
		if err := l.dataBlock(ctx, OpFlashDeflData, buf[:n], seq, timeout); err != nil {
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
