package console

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/muesli/termenv"
)

// run executes a command the model returned and feeds its message back, as
// the bubbletea runtime would.
func run(m *Model, cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	if msg := cmd(); msg != nil {
		m.Update(msg)
	}
}

func TestFollowPausesAndResumes(t *testing.T) {
	m, _ := newTestModel()
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 5})
	m.Update(batchMsg{b: batchOf(0, "one", "two", "three", "four", "five")})
	keys(m, "up")
	if m.offset != 1 {
		t.Fatalf("after up: offset %d, want 1", m.offset)
	}
	m.Update(batchMsg{b: batchOf(0, "six", "seven")})
	if m.offset != 3 || m.unseen != 2 {
		t.Fatalf("new lines while paused: offset %d unseen %d, want 3 and 2 (the view must not move)", m.offset, m.unseen)
	}
	if v := m.View(); strings.Contains(v, "seven") || !strings.Contains(v, "PAUSED +2 (End)") {
		t.Fatalf("paused view shows the new line or no pause:\n%s", v)
	}
	keys(m, "end")
	if v := m.View(); m.offset != 0 || !strings.Contains(v, "seven") || !strings.Contains(v, "FOLLOW") {
		t.Fatalf("End did not resume following (offset %d):\n%s", m.offset, v)
	}
}

func TestScrollbackBound(t *testing.T) {
	be := &fakeBackend{names: []string{"d"}}
	m := NewModel(context.Background(), be, Options{Scrollback: 100, Profile: termenv.Ascii})
	for i := range 1000 {
		m.Update(batchMsg{b: batchOf(0, fmt.Sprintf("line %d", i))})
	}
	if n := len(m.lines) - m.start; n != 100 {
		t.Fatalf("%d lines kept, want the scrollback's 100", n)
	}
	if len(m.lines) > 125 {
		t.Fatalf("%d lines held in memory for a scrollback of 100", len(m.lines))
	}
	if got := m.lines[m.start].Text; got != "line 900" {
		t.Fatalf("oldest kept line %q, want line 900", got)
	}
}

func TestSearchNextPrevious(t *testing.T) {
	m, _ := newTestModel()
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 4})
	m.Update(batchMsg{b: batchOf(0, "a match 1", "x", "a match 2", "y", "z", "a match 3", "w")})
	keys(m, "/", "match", "enter")
	want := func(text string) {
		t.Helper()
		i := m.visibleBack(m.offset)
		if i < 0 || m.lines[i].Text != text || m.lines[i].Seq != m.searchSeq {
			t.Fatalf("current match %q (offset %d), want %q", m.lines[max(i, 0)].Text, m.offset, text)
		}
	}
	want("a match 3")
	keys(m, "n")
	want("a match 2")
	keys(m, "n")
	want("a match 1")
	keys(m, "n")
	want("a match 1")
	if !strings.Contains(m.note, "no older match") {
		t.Fatalf("note %q, want it to say there is no older match", m.note)
	}
	keys(m, "N")
	want("a match 2")
}

func TestFilterAppliesToNewLines(t *testing.T) {
	m, _ := newTestModel()
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 10})
	keys(m, "F", `^E \(`, "enter")
	m.Update(batchMsg{b: batchOf(0, "I (1) a: fine", "E (2) b: broken", "W (3) c: hmm")})
	v := m.View()
	if !strings.Contains(v, "E (2) b: broken") || strings.Contains(v, "fine") || strings.Contains(v, "hmm") {
		t.Fatalf("regex filter let the wrong lines through:\n%s", v)
	}
	keys(m, "F", "(", "enter")
	if !strings.Contains(m.note, "bad filter") {
		t.Fatalf("a bad regular expression was not reported: note %q", m.note)
	}
	keys(m, "esc")
	if v := m.View(); !strings.Contains(v, "fine") {
		t.Fatalf("Esc did not clear the filter:\n%s", v)
	}
}

func TestSendAndResetKeys(t *testing.T) {
	m, be := newTestModel()
	tests := []struct {
		keys []string
		want string
	}{
		{[]string{"i", "status", "enter"}, "status\r\n"},
		{[]string{"e", "i", "a", "enter"}, "a\n"},
		{[]string{"e", "i", "b", "enter"}, "b\r"},
		{[]string{"e", "i", "c", "enter"}, "c"},
		{[]string{"h", "de ad 0x04", "enter"}, "\xde\xad\x04"},
	}
	for _, tc := range tests {
		be.sent = nil
		for _, k := range tc.keys {
			if k == "enter" {
				_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
				run(m, cmd)
				continue
			}
			keys(m, k)
		}
		if len(be.sent) != 1 || string(be.sent[0]) != tc.want {
			t.Errorf("keys %q sent %q, want %q", tc.keys, be.sent, tc.want)
		}
	}
	keys(m, "h", "xyz")
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyEnter})
	if cmd != nil || !strings.Contains(m.note, "hex") {
		t.Errorf("bad hex was not refused: note %q", m.note)
	}
	for _, k := range []string{"R", "B", "ctrl+r"} {
		var cmd tea.Cmd
		if k == "ctrl+r" {
			_, cmd = m.Update(tea.KeyMsg{Type: tea.KeyCtrlR})
		} else {
			_, cmd = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)})
		}
		run(m, cmd)
	}
	if fmt.Sprint(be.resets) != "[false true false]" {
		t.Errorf("resets %v, want [false true false] (hard, bootloader, hard)", be.resets)
	}
}

func TestClearAndQuit(t *testing.T) {
	m, _ := newTestModel()
	m.Update(batchMsg{b: batchOf(0, bootLog...)})
	keys(m, "C")
	if len(m.lines)-m.start != 0 || strings.Contains(m.View(), "MAC") {
		t.Fatal("C did not clear the scrollback")
	}
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	if cmd == nil {
		t.Fatal("q returned no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Fatal("q did not quit")
	}
}

var sgr = regexp.MustCompile("\x1b\\[([0-9;]*)m")

// NO_COLOR: no colour codes at all, but matches still in reverse video.
func TestNoColor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		opts    Options
		colours bool
	}{
		{"colour", Options{Profile: termenv.ANSI256}, true},
		{"NO_COLOR", Options{Profile: termenv.ANSI256, NoColor: true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := NewModel(context.Background(), &fakeBackend{names: []string{"d"}}, tc.opts)
			m.Update(tea.WindowSizeMsg{Width: 80, Height: 12})
			m.Update(batchMsg{b: batchOf(0, bootLog...)})
			keys(m, "/", "MAC", "enter")
			v := m.View()
			colour, reverse := false, false
			for _, s := range sgr.FindAllStringSubmatch(v, -1) {
				for _, p := range strings.Split(s[1], ";") {
					switch {
					case p == "7":
						reverse = true
					case strings.HasPrefix(p, "3") || strings.HasPrefix(p, "9") || p == "38":
						colour = true
					}
				}
			}
			if colour != tc.colours {
				t.Errorf("colour codes present: %v, want %v:\n%q", colour, tc.colours, v)
			}
			if !reverse {
				t.Errorf("the search match is not in reverse video:\n%q", v)
			}
		})
	}
}

func TestMarksInTimeOrder(t *testing.T) {
	m, _ := newTestModel()
	m.Update(tea.WindowSizeMsg{Width: 80, Height: 10})
	b := batchOf(0, "old 1", "old 2", "new 1")
	b.Lines[2].Time = t0.Add(time.Second)
	b.Status = []Status{
		{Dev: 0, State: StateReconnecting, Err: errLost, Time: t0.Add(100 * time.Millisecond)},
		{Dev: 0, State: StateConnected, Time: t0.Add(500 * time.Millisecond)},
	}
	m.Update(batchMsg{b: b})
	var got []string
	for _, l := range m.lines[m.start:] {
		got = append(got, l.Text)
	}
	want := []string{"old 1", "old 2", "--- " + errLost.Error() + "; waiting for the port to come back", "--- reconnected", "new 1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
}
