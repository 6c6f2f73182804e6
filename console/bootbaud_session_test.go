package console

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/sim"
)

// TestResetShowsESP8266BootText resets a virtual ESP8266 running the demo
// firmware from the console (real wire timing: its ROM prints at 74880,
// the firmware at 115200). Told the chip, the console reads the ROM's boot
// text legibly and then the application's log; not told, the banner is
// garbage, as at 115200 on a real board.
func TestResetShowsESP8266BootText(t *testing.T) {
	for _, tc := range []struct {
		chip    string
		legible bool
	}{
		{chip: "esp8266", legible: true},
		{chip: "", legible: false},
	} {
		t.Run("chip="+tc.chip, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var mu sync.Mutex
			var dev *sim.Device
			open := func(ctx context.Context, a string, baud int) (port.Port, error) {
				p, err := port.Open(ctx, a, baud)
				if err == nil {
					mu.Lock()
					dev = port.SimDevice(p)
					mu.Unlock()
				}
				return p, err
			}
			s, err := NewSession(ctx, Config{Ports: []string{"sim://esp8266?id=" + t.Name()}, Baud: 115200, Open: open, Chip: tc.chip})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { cancel(); s.Wait(); dev.Close() }()
			collect(t, s, 5*time.Second, "the connection", func(_ []Line, st []Status) bool { return hasState(st, StateConnected) })
			mu.Lock()
			d := dev
			mu.Unlock()
			if err := d.ProgramBundle("../firmware-images/esp8266-demo.zip"); err != nil {
				t.Fatal(err)
			}
			// The first reset starts the application (the port ends at
			// its rate); the second is the one checked: from the app's
			// rate, as a developer presses the reset key.
			for i := range 2 {
				if err := s.Reset(ctx, 0, false); err != nil {
					t.Fatal(err)
				}
				lines, _ := collect(t, s, 10*time.Second, "the application's log", func(l []Line, _ []Status) bool { return hasLine(l, "Init done") })
				if i == 0 {
					continue
				}
				checkBootText(t, lines, tc.legible)
			}
		})
	}
}

// checkBootText: what the console showed after its reset.
func checkBootText(t *testing.T, lines []Line, legible bool) {
	t.Helper()
	var texts []string
	banner, app := -1, -1
	for i, l := range lines {
		texts = append(texts, l.Text)
		if banner < 0 && strings.Contains(l.Text, "ets Jan  8 2013,rst cause:2, boot mode:(3,6)") {
			banner = i
		}
		if app < 0 && strings.Contains(l.Text, "Mongoose OS") {
			app = i
		}
	}
	all := strings.Join(texts, "\n")
	if !legible {
		if banner >= 0 || hasLine(lines, "load 0x40100000") || strings.Contains(all, "baud") {
			t.Errorf("without the chip the console followed the ROM's rate:\n%s", all)
		}
		return
	}
	if banner < 0 || !hasLine(lines, "load 0x40100000, len ") {
		t.Fatalf("no legible ROM boot text after the reset:\n%s", all)
	}
	if app < banner {
		t.Errorf("the application's log must follow the ROM's text:\n%s", all)
	}
	// The notes stand where the rate changed: before the banner, and
	// between the ROM's text and the application's.
	toROM := strings.Index(all, "--- reset: following the ROM boot messages at 74880 baud")
	toApp := strings.Index(all, "--- following the application at 115200 baud")
	if toROM < 0 || toApp < 0 || toROM > strings.Index(all, "ets Jan") || toApp < strings.Index(all, "load 0x40100000") || toApp > strings.Index(all, "Mongoose OS") {
		t.Errorf("the notes of the rate changes are missing or out of place:\n%s", all)
	}
}
