package sim_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/slip"
)

// These tests speak the wire protocol to the virtual device byte by byte,
// checking the details real tools depend on. The esptool-js interop test
// (package interop) judges the same behaviour with a tool we did not write.

func open(t *testing.T, url string) (port.Port, *sim.Device) {
	t.Helper()
	p, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { p.Close() })
	return p, port.SimDevice(p)
}

// enterDownload runs the classic reset and returns what the ROM printed.
func enterDownload(t *testing.T, p port.Port) string {
	t.Helper()
	ctx := context.Background()
	if err := flasher.ClassicReset(50*time.Millisecond).Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	return readFor(p, 100*time.Millisecond)
}

// readFor collects what arrives during d.
func readFor(p port.Port, d time.Duration) string {
	var out []byte
	deadline := time.Now().Add(d)
	buf := make([]byte, 1024)
	for time.Now().Before(deadline) {
		p.SetReadTimeout(time.Until(deadline))
		n, _ := p.Read(buf)
		out = append(out, buf[:n]...)
	}
	return string(out)
}

// frames reads every SLIP frame arriving during d.
func frames(p port.Port, d time.Duration) [][]byte {
	var dec slip.Decoder
	var out [][]byte
	for _, b := range []byte(readFor(p, d)) {
		if r, _ := dec.Push(b); r == slip.Frame {
			out = append(out, append([]byte(nil), dec.Frame()...))
		}
	}
	return out
}

func request(op byte, data []byte, chk uint32) []byte {
	pkt := make([]byte, 8, 8+len(data))
	pkt[1] = op
	binary.LittleEndian.PutUint16(pkt[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(pkt[4:], chk)
	return slip.Encode(nil, append(pkt, data...))
}

var syncData = append([]byte{7, 7, 0x12, 0x20}, bytes.Repeat([]byte{0x55}, 32)...)

func TestDownloadBannerAndSync(t *testing.T) {
	tests := []struct {
		chip      string
		statusLen int
		banner    string
	}{
		{"esp32", 4, "rst:0x1 (POWERON_RESET),boot:0x3 (DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n"},
		{"esp32c3", 4, "ESP-ROM:esp32c3-api1-20210207\r\nBuild:Feb  7 2021\r\nrst:0x1 (POWERON),boot:0x4 (DOWNLOAD(USB/UART0/1))\r\nwaiting for download\r\n"},
		{"esp32s3", 4, "boot:0x0 (DOWNLOAD(USB/UART0))\r\nwaiting for download"},
		{"esp8266", 2, ""}, // printed at 74880 baud: garbage at 115200
	}
	for _, tt := range tests {
		t.Run(tt.chip, func(t *testing.T) {
			t.Parallel()
			p, _ := open(t, "sim://"+tt.chip+"?fast=1")
			banner := enterDownload(t, p)
			if tt.banner != "" && !strings.Contains(banner, tt.banner) {
				t.Errorf("banner %q does not contain %q", banner, tt.banner)
			}
			if tt.banner == "" && (banner == "" || strings.Contains(banner, "ets Jan")) {
				t.Errorf("ESP8266 banner at 74880 should arrive garbled at 115200, got %q", banner)
			}
			p.Write(request(0x08, syncData, 0))
			fs := frames(p, 200*time.Millisecond)
			if len(fs) != 8 {
				t.Fatalf("%d replies to SYNC, want 8", len(fs))
			}
			want := append([]byte{1, 8, byte(tt.statusLen), 0, 7, 7, 0x12, 0x20}, make([]byte, tt.statusLen)...)
			for _, f := range fs {
				if !bytes.Equal(f, want) {
					t.Fatalf("SYNC reply % x, want % x", f, want)
				}
			}
		})
	}
}

func TestESP8266BannerAtBootBaud(t *testing.T) {
	p, _ := open(t, "sim://esp8266?fast=1")
	p.SetBaudRate(74880)
	banner := enterDownload(t, p)
	if !strings.Contains(banner, "ets Jan  8 2013,rst cause:2, boot mode:(1,6)") {
		t.Fatalf("banner at 74880 = %q", banner)
	}
}

// How the ROM and the flasher stub answer unknown commands and known ones
// with a bad length. Sources of the expected bytes:
//   - ROM: measured on the ESP32 emulator (Espressif's QEMU running the
//     real v3 mask ROM): an unknown op is answered with the previous
//     reply's op byte and value and status 01 05 00 00, as many times as
//     that reply was sent (8 after SYNC); a known op with a bad length
//     gets its own op byte with 01 05 00 00, and so does a FLASH_DATA,
//     FLASH_DEFL_DATA or MEM_DATA block without its BEGIN (what a ROM sees
//     when the chip was reset under the stub). The ESP8266 ROM's answer
//     (2 status bytes) is esptool's: loader.py command() treats "another
//     op, status (non-zero, 05)" as unsupported and drains 8 repeats.
//   - Stub: esp-flasher-stub's command_handler.c (handle_command: unknown
//     op -> RESPONSE_INVALID_COMMAND 0xC300; s_get_security_info ->
//     RESPONSE_CMD_NOT_IMPLEMENTED 0xFF00 on the ESP32; s_erase_region ->
//     RESPONSE_BAD_DATA_LEN 0xC000 for a wrong length), all measured on the
//     ESP32 emulator with the stub mos uploads (READ_FLASH_SLOW, a ROM-only
//     command, is unknown to it: C3 00).
func TestUnknownCommandAnswers(t *testing.T) {
	hdr := func(op byte, statusLen int, value uint32, status ...byte) []byte {
		f := []byte{1, op, byte(statusLen), 0}
		f = binary.LittleEndian.AppendUint32(f, value)
		f = append(f, status...)
		return append(f, make([]byte, statusLen-len(status))...)
	}
	rep := func(f []byte, n int) [][]byte {
		out := make([][]byte, n)
		for i := range out {
			out[i] = f
		}
		return out
	}
	type step struct {
		op   byte
		data []byte
		want [][]byte // nil: not checked
	}
	const magic = 0x00F01D83 // READ_REG 0x40001000 on the ESP32
	syncOK := rep(hdr(0x08, 4, 0x20120707), 8)
	tests := []struct {
		name  string
		chip  string
		stub  bool
		steps []step
	}{
		{"rom: unknown op right after reset", "esp32", false, []step{
			{0x99, nil, [][]byte{hdr(0x00, 4, 0, 1, 5)}},
		}},
		{"rom: unknown op after SYNC, twice", "esp32", false, []step{
			{0x08, syncData, syncOK},
			{0x14, nil, rep(hdr(0x08, 4, 0x20120707, 1, 5), 8)},
			{0x14, nil, rep(hdr(0x08, 4, 0x20120707, 1, 5), 8)},
		}},
		{"rom: unknown op after READ_REG", "esp32", false, []step{
			{0x08, syncData, syncOK},
			{0x0A, le(0x40001000), [][]byte{hdr(0x0A, 4, magic)}},
			{0x99, nil, [][]byte{hdr(0x0A, 4, magic, 1, 5)}},
			{0xD1, nil, [][]byte{hdr(0x0A, 4, magic, 1, 5)}},
		}},
		{"rom: known op with a bad length, then unknown", "esp32", false, []step{
			{0x08, syncData, syncOK},
			{0x0B, nil, [][]byte{hdr(0x0B, 4, 0x20120707, 1, 5)}},
			{0x99, nil, [][]byte{hdr(0x0B, 4, 0x20120707, 1, 5)}},
			{0x02, le(0, 0, 0x400), [][]byte{hdr(0x02, 4, 0x20120707, 1, 5)}},
		}},
		{"rom: replies carry SYNC's value until READ_REG", "esp32", false, []step{
			{0x08, syncData, syncOK},
			{0x0D, le(0, 0), [][]byte{hdr(0x0D, 4, 0x20120707)}},
			{0x0A, le(0x40001000), [][]byte{hdr(0x0A, 4, magic)}},
			{0x0D, le(0, 0), [][]byte{hdr(0x0D, 4, magic)}},
		}},
		{"rom: data blocks without a BEGIN", "esp32", false, []step{
			{0x08, syncData, syncOK},
			{0x11, append(le(100, 0, 0, 0), make([]byte, 100)...), [][]byte{hdr(0x11, 4, 0x20120707, 1, 5)}},
			{0x03, append(le(100, 0, 0, 0), make([]byte, 100)...), [][]byte{hdr(0x03, 4, 0x20120707, 1, 5)}},
			{0x07, append(le(4, 0, 0, 0), 1, 2, 3, 4), [][]byte{hdr(0x07, 4, 0x20120707, 1, 5)}},
		}},
		{"esp8266 rom: unknown op after SYNC", "esp8266", false, []step{
			{0x08, syncData, rep(hdr(0x08, 2, 0x20120707), 8)},
			{0x14, nil, rep(hdr(0x08, 2, 0x20120707, 1, 5), 8)},
		}},
		{"stub: unknown op", "esp32", true, []step{
			{0x99, nil, [][]byte{hdr(0x99, 2, 0, 0xC3)}},
		}},
		{"stub: known op not implemented on the ESP32", "esp32", true, []step{
			{0x14, nil, [][]byte{hdr(0x14, 2, 0, 0xFF)}},
		}},
		{"stub: the ROM's slow read is unknown to it", "esp32", true, []step{
			{0x0E, le(0, 16), [][]byte{hdr(0x0E, 2, 0, 0xC3)}},
		}},
		{"stub: ERASE_REGION without its 8 bytes", "esp32", true, []step{
			{0xD1, nil, [][]byte{hdr(0xD1, 2, 0, 0xC0)}},
		}},
		{"stub: SYNC", "esp32", true, []step{
			{0x08, syncData, rep(hdr(0x08, 2, 0), 8)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, _ := open(t, "sim://"+tt.chip+"?fast=1")
			if tt.stub {
				l, err := flasher.Connect(context.Background(), p, flasher.ConnectOptions{})
				if err != nil {
					t.Fatal(err)
				}
				uploadStub(t, l)
			} else {
				enterDownload(t, p)
			}
			for i, st := range tt.steps {
				p.Write(request(st.op, st.data, 0))
				got := frames(p, 100*time.Millisecond)
				if st.want == nil {
					continue
				}
				if len(got) != len(st.want) {
					t.Fatalf("step %d (op %02X): %d replies %x, want %d: % x", i, st.op, len(got), got, len(st.want), st.want[0])
				}
				for j := range got {
					if !bytes.Equal(got[j], st.want[j]) {
						t.Fatalf("step %d (op %02X) reply %d: % x, want % x", i, st.op, j, got[j], st.want[j])
					}
				}
			}
		})
	}
}

func TestBaudMismatchGarbles(t *testing.T) {
	// an ESP32 whose 8 MHz oscillator is exact: the ROM's rate is the one asked
	p, _ := open(t, "sim://esp32?fast=1&ck8m-drift=0")
	enterDownload(t, p)
	p.Write(request(0x08, syncData, 0)) // the ROM follows the host's rate (auto-baud)
	if fs := frames(p, 100*time.Millisecond); len(fs) != 8 {
		t.Fatalf("%d SYNC replies", len(fs))
	}
	// ask the ROM to switch to 460800 but stay at 115200 on the host side
	data := binary.LittleEndian.AppendUint32(nil, 460800)
	data = binary.LittleEndian.AppendUint32(data, 0)
	p.Write(request(0x0F, data, 0))
	if fs := frames(p, 100*time.Millisecond); len(fs) != 1 {
		t.Fatalf("%d replies to CHANGE_BAUDRATE, want 1 (sent at the old rate)", len(fs))
	}
	p.Write(request(0x0A, binary.LittleEndian.AppendUint32(nil, 0x40001000), 0))
	if fs := frames(p, 100*time.Millisecond); len(fs) != 0 {
		t.Fatalf("a command at the wrong baud was understood: % x", fs)
	}
	p.SetBaudRate(460800)
	p.Write(request(0x0A, binary.LittleEndian.AppendUint32(nil, 0x40001000), 0))
	fs := frames(p, 100*time.Millisecond)
	if len(fs) != 1 || binary.LittleEndian.Uint32(fs[0][4:]) != 0x00F01D83 {
		t.Fatalf("READ_REG at the new rate: % x", fs)
	}
}

// The wire really takes time: at 115200 baud a 4 KiB write lasts about
// 355 ms before the device has it all.
func TestRealTimingOnTheWire(t *testing.T) {
	p, dev := open(t, "sim://esp32")
	_ = dev
	start := time.Now()
	p.Write(make([]byte, 4096))
	p.Write(make([]byte, 4096))
	p.Drain()
	if el := time.Since(start); el < 600*time.Millisecond {
		t.Fatalf("8 KiB at 115200 baud took %v, the wire needs at least 710 ms", el)
	}
}

func connect(t *testing.T, url string) (*flasher.Loader, *sim.Device) {
	t.Helper()
	p, dev := open(t, url)
	l, err := flasher.Connect(context.Background(), p, flasher.ConnectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l, dev
}

// uploadStub uploads Espressif's flasher stub for the chip, complete and
// at its entry point: only that starts the stub model (OHAI).
func uploadStub(t *testing.T, l *flasher.Loader) {
	t.Helper()
	if err := l.RunStub(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// Anything but a complete known stub image is code the virtual device
// cannot run: after MEM_END's reply the chip answers nothing, as a chip
// running garbage would not.
func TestUnknownRAMCodeDoesNotStartTheStub(t *testing.T) {
	c, err := chips.ByKey("esp32")
	if err != nil {
		t.Fatal(err)
	}
	s, err := flasher.StubFor(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		text  []byte
		entry uint32
	}{
		{"other code", bytes.Repeat([]byte{0x36, 0x41, 0x00}, 100), s.TextStart},
		{"stub text cut short", s.Text[:len(s.Text)-0x100], s.Entry},
		{"stub at a wrong entry", s.Text, s.Entry + 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, dev := connect(t, "sim://esp32?fast=1")
			ctx := context.Background()
			if err := l.LoadRAM(ctx, s.TextStart, tc.text); err != nil {
				t.Fatal(err)
			}
			if err := l.LoadRAM(ctx, s.DataStart, s.Data); err != nil {
				t.Fatal(err)
			}
			if _, err := l.Command(ctx, flasher.OpMemEnd, le(0, tc.entry), 0, time.Second); err != nil {
				t.Fatal(err)
			}
			if f, err := l.ReadFrame(ctx, 300*time.Millisecond); err == nil {
				t.Fatalf("got %q after jumping into code that is no known stub", f)
			}
			if dev.State() != "hung" {
				t.Fatalf("state %q, want hung", dev.State())
			}
		})
	}
}

func le(ws ...uint32) []byte {
	var b []byte
	for _, w := range ws {
		b = binary.LittleEndian.AppendUint32(b, w)
	}
	return b
}

// Measured on the ESP32 emulator: after MEM_END into 256 zero bytes at
// 0x40080000, the ROM's reply, then its exception handler's two lines,
// then silence.
func TestJumpToNowhereHangs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		upload bool
	}{{"nothing uploaded", false}, {"zeros uploaded", true}} {
		t.Run(tc.name, func(t *testing.T) {
			l, dev := connect(t, "sim://esp32?fast=1")
			ctx := context.Background()
			if tc.upload {
				if err := l.LoadRAM(ctx, 0x40080000, make([]byte, 0x100)); err != nil {
					t.Fatal(err)
				}
			}
			// raw, so that what follows the reply is seen as it arrives
			l.Port().Write(request(flasher.OpMemEnd, le(0, 0x40080000), 0))
			got := readFor(l.Port(), 300*time.Millisecond)
			reply, text, ok := strings.Cut(got[1:], "\xc0")
			if !ok || len(reply) < 2 || reply[1] != flasher.OpMemEnd {
				t.Fatalf("no MEM_END reply first: %q", got)
			}
			want := "Fatal exception (0): IllegalInstruction\r\n" +
				"epc1=0x40080000, epc2=0x00000000, epc3=0x00000000, excvaddr=0x00000000, depc=0x00000000\r\n"
			if text != want {
				t.Fatalf("after the jump the chip printed %q, want %q", text, want)
			}
			if dev.State() != "hung" {
				t.Fatalf("state %q, want hung", dev.State())
			}
		})
	}
}

// ROM path: FLASH_DEFL_* writes, MD5 comes back as 32 hex characters.
func TestROMCompressedWriteAndMD5(t *testing.T) {
	l, dev := connect(t, "sim://esp32?fast=1")
	ctx := context.Background()
	if err := l.AttachFlash(ctx, 4<<20); err != nil {
		t.Fatal(err)
	}
	img := pattern(70000)
	writeDeflated(t, l, img, 0x10000, 0x400)
	r, err := l.Command(ctx, flasher.OpSPIFlashMD5, le(0x10000, uint32(len(img)), 0, 0), 0, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum(img)
	if string(r.Data) != hex.EncodeToString(sum[:]) {
		t.Fatalf("ROM MD5 %q, want %x as lowercase hex", r.Data, sum)
	}
	got := make([]byte, len(img))
	dev.Flash().ReadAt(got, 0x10000)
	if !bytes.Equal(got, img) {
		t.Fatal("flash does not hold the image")
	}
}

func writeDeflated(t *testing.T, l *flasher.Loader, img []byte, addr uint32, block int) {
	t.Helper()
	ctx := context.Background()
	var zb bytes.Buffer
	zw, _ := zlib.NewWriterLevel(&zb, 9)
	zw.Write(img)
	zw.Close()
	comp := zb.Bytes()
	blocks := (len(comp) + block - 1) / block
	begin := le(uint32(len(img)), uint32(blocks), uint32(block), addr)
	if _, err := l.Command(ctx, flasher.OpFlashDeflBegin, begin, 0, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < blocks; i++ {
		chunk := comp[i*block : min(len(comp), (i+1)*block)]
		if _, err := l.Command(ctx, flasher.OpFlashDeflData, append(le(uint32(len(chunk)), uint32(i), 0, 0), chunk...), flasher.Checksum(chunk), 10*time.Second); err != nil {
			t.Fatalf("block %d: %v", i, err)
		}
	}
}

func pattern(n int) []byte {
	b := make([]byte, n)
	x := uint32(12345)
	for i := range b {
		x = x*1103515245 + 12345
		b[i] = byte(x >> 16)
	}
	return b
}

// Stub path: compressed write, raw MD5, READ_FLASH flow with its
// acknowledgements and final digest.
func TestStubWriteReadFlash(t *testing.T) {
	for _, chip := range []string{"esp8266", "esp32c3"} {
		t.Run(chip, func(t *testing.T) {
			l, _ := connect(t, "sim://"+chip+"?fast=1")
			uploadStub(t, l)
			ctx := context.Background()
			img := pattern(50000)
			writeDeflated(t, l, img, 0x20000, 0x4000)
			if _, err := l.Command(ctx, flasher.OpFlashDeflEnd, le(1), 0, time.Second); err != nil {
				t.Fatal(err)
			}
			r, err := l.Command(ctx, flasher.OpSPIFlashMD5, le(0x20000, uint32(len(img)), 0, 0), 0, 3*time.Second)
			sum := md5.Sum(img)
			if err != nil || !bytes.Equal(r.Data, sum[:]) {
				t.Fatalf("stub MD5 % x, %v; want raw % x", r.Data, err, sum)
			}
			if _, err := l.Command(ctx, flasher.OpReadFlash, le(0x20000, uint32(len(img)), 0x1000, 64), 0, time.Second); err != nil {
				t.Fatal(err)
			}
			var got []byte
			for len(got) < len(img) {
				f, err := l.ReadFrame(ctx, time.Second)
				if err != nil {
					t.Fatalf("after %d bytes: %v", len(got), err)
				}
				got = append(got, f...)
				l.Port().Write(slip.Encode(nil, le(uint32(len(got)))))
			}
			digest, err := l.ReadFrame(ctx, time.Second)
			if err != nil || !bytes.Equal(got, img) || !bytes.Equal(digest, sum[:]) {
				t.Fatalf("read back equal=%v digest % x err %v", bytes.Equal(got, img), digest, err)
			}
		})
	}
}

// The stub rejects a block with a bad checksum with its own status code.
func TestStubBadChecksum(t *testing.T) {
	l, _ := connect(t, "sim://esp32?fast=1")
	uploadStub(t, l)
	ctx := context.Background()
	if _, err := l.Command(ctx, flasher.OpFlashBegin, le(0x4000, 1, 0x4000, 0x10000), 0, time.Second); err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 0x4000)
	_, err := l.Command(ctx, flasher.OpFlashData, append(le(0x4000, 0, 0, 0), data...), 0x12, time.Second)
	var de *flasher.DeviceError
	if !errors.As(err, &de) || de.Status[0] != 0xC1 {
		t.Fatalf("err = %v, want stub status C1 (bad checksum)", err)
	}
}

// The ESP8266 ROM over-erases (asked for N sectors it erases N plus the
// sectors up to the next 64 KiB boundary): what esptool compensates for.
func TestESP8266ROMEraseQuirk(t *testing.T) {
	l, dev := connect(t, "sim://esp8266?fast=1")
	ctx := context.Background()
	f := dev.Flash()
	if _, err := f.Program(0, bytes.Repeat([]byte{0}, 0x20000)); err != nil {
		t.Fatal(err)
	}
	// ask for 2 sectors at 0x1000: head = 15 sectors to the boundary, so
	// the ROM erases 2 + 2 = 4 sectors
	if _, err := l.Command(ctx, flasher.OpFlashBegin, le(0x2000, 0, 0x400, 0x1000), 0, time.Second); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0x6000)
	f.ReadAt(buf, 0)
	for i, b := range buf {
		erased := i >= 0x1000 && i < 0x5000
		if (b == 0xFF) != erased {
			t.Fatalf("byte 0x%x = %02x; want erased exactly 0x1000-0x5000", i, b)
		}
	}
}

func TestBlankFlashBootLoop(t *testing.T) {
	p, dev := open(t, "sim://esp32?fast=1")
	if err := flasher.HardReset().Run(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	out := readFor(p, 400*time.Millisecond)
	if !strings.Contains(out, "boot:0x13 (SPI_FAST_FLASH_BOOT)") || strings.Count(out, "invalid header: 0xffffffff") < 2 {
		t.Fatalf("blank ESP32 printed %q", out)
	}
	if dev.State() != "boot-error" {
		t.Fatalf("state %q", dev.State())
	}
}

func TestChipsTableMatchesDevice(t *testing.T) {
	for _, c := range chips.All() {
		l, _ := connect(t, "sim://"+c.Key+"?fast=1")
		if l.Chip != c {
			t.Errorf("%s detected as %s", c.Key, l.Chip.Key)
		}
		if l.StatusLen != c.ROMStatusLen {
			t.Errorf("%s: ROM replies carry %d status bytes, want %d", c.Key, l.StatusLen, c.ROMStatusLen)
		}
	}
}

// The ROM erases before it answers FLASH_BEGIN, taking the modelled erase
// time: a 64 KiB block at datasheet-typical (150 ms) or maximum (2 s)
// timing. Only lower bounds are checked: the model must not be faster
// than the chip.
func TestROMEraseTakesModelledTime(t *testing.T) {
	for _, tc := range []struct {
		timing string
		min    time.Duration
	}{{"typ", 150 * time.Millisecond}, {"max", 2 * time.Second}} {
		l, _ := connect(t, "sim://esp32?timing="+tc.timing)
		if err := l.AttachFlash(context.Background(), 4<<20); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if _, err := l.Command(context.Background(), flasher.OpFlashBegin, le(0x10000, 64, 0x400, 0x10000), 0, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el < tc.min {
			t.Errorf("%s: FLASH_BEGIN of 64 KiB answered after %v, the erase alone takes %v", tc.timing, el, tc.min)
		}
	}
}
