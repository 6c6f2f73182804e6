package demofw_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

// slowBurst prepares a request that keeps the firmware busy for about 50
// ms (its file lands in a used sector, which must be erased first) and a
// long request behind it, and returns both frames and the first one's id.
func slowBurst(t *testing.T, dc *demoConn) (string, string, int) {
	t.Helper()
	// leave a used, freed sector where the next file goes
	dc.result("FS.Put", map[string]any{"filename": "junk.bin", "data": base64.StdEncoding.EncodeToString(pattern(2048))}, nil)
	dc.result("FS.Remove", map[string]any{"filename": "junk.bin"}, nil)
	slow, id := dc.request("FS.Put", map[string]any{"filename": "a.bin", "offset": 0, "data": base64.StdEncoding.EncodeToString(pattern(512))})
	long, _ := dc.request("FS.Put", map[string]any{"filename": "b.bin", "offset": 0, "data": base64.StdEncoding.EncodeToString(pattern(2048))})
	return frame(slow), frame(long), id
}

// checkBlastLoses sends both frames at once, ignoring flow control: the
// second one arrives while the first one erases flash, overruns the FIFO
// and is dropped as corrupted.
func checkBlastLoses(t *testing.T, dc *demoConn) {
	slow, long, id := slowBurst(t, dc)
	before := dc.dev.UARTStats()
	mark := dc.mark()
	dc.write(slow + long)
	if r := dc.waitReply(mark, id, 5*time.Second); r.Error != nil {
		t.Fatalf("first request: %s", r.raw)
	}
	out := dc.waitFor(mark, "Corrupted frame", 5*time.Second)
	st := dc.dev.UARTStats()
	if st.Lost == before.Lost {
		t.Errorf("no bytes lost: %+v", st)
	}
	if st.MaxFill != 256 || st.XOFFSent == before.XOFFSent || !strings.Contains(out, "\x13") {
		t.Errorf("the FIFO should have filled and sent XOFF: %+v", st)
	}
	if m := dc.listExt(); m["a.bin"] != 512 || m["b.bin"] != 0 {
		t.Errorf("files after the overrun: %v", m)
	}
}

func TestDemoUARTOverrunFast(t *testing.T) {
	checkBlastLoses(t, bootDemo(t, "esp32", ""))
}

// With real timing: the same burst loses bytes when the host ignores XOFF,
// and none when it honours XOFF/XON.
func TestDemoUARTFlowControl(t *testing.T) {
	if testing.Short() {
		t.Skip("real timing")
	}
	t.Run("ignored", func(t *testing.T) {
		checkBlastLoses(t, bootDemo(t, "esp32", "&fast=0"))
	})
	t.Run("honoured", func(t *testing.T) {
		dc := bootDemo(t, "esp32", "&fast=0")
		slow, long, _ := slowBurst(t, dc)
		before := dc.dev.UARTStats()
		mark := dc.mark()
		stopped := func() bool {
			out := dc.since(mark)
			return strings.LastIndexByte(out, 0x13) > strings.LastIndexByte(out, 0x11)
		}
		data := slow + long
		for len(data) > 0 {
			for stopped() {
				dc.waitUntil(mark, 5*time.Second, "XON", func(string) bool { return !stopped() })
			}
			n := min(16, len(data))
			dc.write(data[:n])
			dc.p.Drain() // the chunk has reached the device
			data = data[n:]
		}
		r := dc.call("FS.ListExt", nil)
		st := dc.dev.UARTStats()
		if st.Lost != before.Lost || st.XOFFSent == before.XOFFSent || st.XONSent == before.XONSent {
			t.Errorf("honouring XON/XOFF: %+v (before %+v)", st, before)
		}
		if !strings.Contains(r.raw, `{"name": "a.bin", "size": 512}`) || !strings.Contains(r.raw, `{"name": "b.bin", "size": 2048}`) {
			t.Errorf("files: %s", r.raw)
		}
	})
}
