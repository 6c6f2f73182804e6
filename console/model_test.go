package console

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var t0 = time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)

// bootLog is what the demo firmware prints, shortened, with an RPC frame
// and an ESP-IDF error among it.
var bootLog = []string{
	"ets Jun  8 2016 00:22:57",
	"rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)",
	"I (27) boot: ESP-IDF v5.3.1 2nd stage bootloader",
	"\x1b[0;31mE (31) wifi: connect failed\x1b[0m",
	"mgos_freertos.c:98      mos-demo 1.0.0 (20250101-000000/1.0.0-demo)",
	`"""{"id":7,"result":{"app":"mos-demo","fw_version":"1.0.0"}}1a2b3c4d"""`,
	"mgos_sys_config.c:470   MAC: 24:0a:c4:12:34:61",
	"mgos_wifi.c:360         WiFi mode: AP, a line long enough to wrap on a narrow terminal",
	"mgos_init.c:33          Init done, RAM: 299468 total, 231264 free",
}

// batchOf makes lines as Session.process would, 10 ms apart.
func batchOf(dev int, texts ...string) Batch {
	s := &Session{devs: []*device{{}, {}}}
	var b Batch
	for i, t := range texts {
		d := s.devs[dev]
		d.idx = dev
		d.pendingT = t0.Add(time.Duration(i) * 10 * time.Millisecond)
		b.Lines = append(b.Lines, s.finish(d, []byte(t+"\r\n")))
	}
	return b
}

func newTestModel(names ...string) (*Model, *fakeBackend) {
	if len(names) == 0 {
		names = []string{"esp32"}
	}
	be := &fakeBackend{names: names, start: t0.Add(-time.Second)}
	m := NewModel(context.Background(), be, Options{Profile: termenv.Ascii})
	m.Update(batchMsg{b: Batch{Status: []Status{{Dev: 0, State: StateConnected}}}})
	return m, be
}

func keys(m *Model, ks ...string) {
	for _, k := range ks {
		var msg tea.KeyMsg
		switch k {
		case "enter":
			msg = tea.KeyMsg{Type: tea.KeyEnter}
		case "esc":
			msg = tea.KeyMsg{Type: tea.KeyEsc}
		case "up":
			msg = tea.KeyMsg{Type: tea.KeyUp}
		case "down":
			msg = tea.KeyMsg{Type: tea.KeyDown}
		case "end":
			msg = tea.KeyMsg{Type: tea.KeyEnd}
		case "tab":
			msg = tea.KeyMsg{Type: tea.KeyTab}
		case "ctrl+r":
			msg = tea.KeyMsg{Type: tea.KeyCtrlR}
		default:
			for _, r := range k {
				m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
			}
			continue
		}
		m.Update(msg)
	}
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s (go test -update rewrites it):\n--- got:\n%s\n--- want:\n%s", name, path, got, want)
	}
}

func TestViewGolden(t *testing.T) {
	tests := []struct {
		name  string
		w, h  int
		devs  []string
		setup func(m *Model)
		keys  []string
	}{
		{name: "boot_120", w: 120, h: 12},
		{name: "boot_50", w: 50, h: 14},
		{name: "timestamps_absolute", w: 80, h: 8, keys: []string{"t"}},
		{name: "timestamps_start", w: 80, h: 8, keys: []string{"t", "t"}},
		{name: "timestamps_delta", w: 80, h: 8, keys: []string{"t", "t", "t"}},
		{name: "hex", w: 80, h: 8, keys: []string{"x"}},
		{name: "control", w: 80, h: 12, keys: []string{"c"}},
		{name: "rpc_shown", w: 80, h: 14, keys: []string{"p"}},
		{name: "search", w: 80, h: 6, keys: []string{"/", "MAC", "enter"}},
		{name: "search_prompt", w: 80, h: 6, keys: []string{"/", "boo"}},
		{name: "filter_text", w: 80, h: 6, keys: []string{"f", "mgos", "enter"}},
		{name: "filter_regex", w: 80, h: 6, keys: []string{"F", `^[EI] \(`, "enter"}},
		{name: "send_prompt", w: 80, h: 6, keys: []string{"e", "i", "help"}},
		{name: "paused", w: 80, h: 6, keys: []string{"up", "up"}},
		{name: "help_80", w: 80, h: 30, keys: []string{"?"}},
		{name: "help_50x20", w: 50, h: 20, keys: []string{"?"}},
		{name: "two_devices", w: 80, h: 8, devs: []string{"ttyUSB0", "ttyUSB1"}, setup: func(m *Model) {
			m.Update(batchMsg{b: batchOf(1, "E (5) app: second board")})
			m.Update(batchMsg{b: Batch{Status: []Status{{Dev: 1, State: StateReconnecting, Err: errLost}}}})
		}},
		{name: "partial_line", w: 80, h: 5, setup: func(m *Model) {
			m.Update(batchMsg{b: Batch{Partial: []string{"mos> "}}})
		}},
		{name: "reconnect_marks", w: 80, h: 6, setup: func(m *Model) {
			m.Update(batchMsg{b: Batch{Status: []Status{{Dev: 0, State: StateReconnecting, Err: errLost, Time: t0}}}})
			m.Update(batchMsg{b: Batch{Status: []Status{{Dev: 0, State: StateConnected, Time: t0}}}})
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newTestModel(tc.devs...)
			m.Update(tea.WindowSizeMsg{Width: tc.w, Height: tc.h})
			m.Update(batchMsg{b: batchOf(0, bootLog...)})
			if tc.setup != nil {
				tc.setup(m)
			}
			keys(m, tc.keys...)
			got := m.View()
			for i, row := range strings.Split(got, "\n") {
				if w := visibleWidth(row); w > tc.w {
					t.Errorf("row %d is %d columns wide, more than the terminal's %d: %q", i, w, tc.w, row)
				}
			}
			if n := strings.Count(got, "\n") + 1; n > tc.h {
				t.Errorf("view has %d rows, more than the terminal's %d", n, tc.h)
			}
			golden(t, tc.name, got)
		})
	}
}
