package output

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func contextCanceled() error { return context.Canceled }

// fakeClock advances by step on every reading, so rates are predictable.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(step); return t }
}

func write(p Progress, part string, total, step int64) {
	for done := int64(0); done <= total; done += step {
		p.Report(ProgressEvent{Stage: "writing", Part: part, Done: done, Total: total})
	}
}

func TestNilProgressIsSafe(t *testing.T) {
	var p Progress
	p.Report(ProgressEvent{Stage: "writing"})
}

func TestProgressPlain(t *testing.T) {
	p, out, errb := newTest(false, false)
	p.now = fakeClock(100 * time.Millisecond)
	write(p.Progress(), "app", 1000, 50)
	want := []string{
		"Writing app: 0% (0 B of 1000 B)",
		"Writing app: 10% (100 B of 1000 B)",
		"Writing app: 20% (200 B of 1000 B)",
		"Writing app: 30% (300 B of 1000 B, ETA 1.4s)",
		"Writing app: 40% (400 B of 1000 B, ETA 1.2s)",
		"Writing app: 50% (500 B of 1000 B, ETA 1.0s)",
		"Writing app: 60% (600 B of 1000 B, ETA 0.8s)",
		"Writing app: 70% (700 B of 1000 B, ETA 0.6s)",
		"Writing app: 80% (800 B of 1000 B, ETA 0.4s)",
		"Writing app: 90% (900 B of 1000 B, ETA 0.2s)",
		"Writing app: 100% (1000 B) in 2.0s, 500 B/s",
	}
	if got := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out.Len() != 0 {
		t.Errorf("stdout = %q", out)
	}
}

func TestProgressTTY(t *testing.T) {
	p, _, errb := newTest(false, false)
	p.tty = true
	p.now = fakeClock(time.Millisecond)
	pr := p.Progress()
	pr(ProgressEvent{Stage: "writing", Part: "boot", Done: 0, Total: 4096})
	pr(ProgressEvent{Stage: "writing", Part: "boot", Done: 1, Total: 4096}) // still 0%: no redraw
	pr(ProgressEvent{Stage: "writing", Part: "boot", Done: 2048, Total: 4096})
	p.Infof("note")                                                            // erases the bar first
	pr(ProgressEvent{Stage: "writing", Part: "boot", Done: 2049, Total: 4096}) // redrawn after the message
	pr(ProgressEvent{Stage: "writing", Part: "boot", Done: 4096, Total: 4096})
	pr(ProgressEvent{Stage: "writing", Part: "boot", Done: 4096, Total: 4096}) // duplicate: ignored
	got := errb.String()
	// The bar is bubbles' progress component, without colour when the
	// terminal has none; the last redraw is the phase's summary.
	want := "\rWriting boot ░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░   0%  0 B / 4.0 KiB  0.0s\x1b[K" +
		"\rWriting boot ███████████████░░░░░░░░░░░░░░░  50%  2.0 KiB / 4.0 KiB  0.0s\x1b[K" +
		"\r\x1b[2Knote\n" +
		"\rWriting boot ███████████████░░░░░░░░░░░░░░░  50%  2.0 KiB / 4.0 KiB  0.0s\x1b[K" +
		"\rWriting boot: 4.0 KiB in 0.0s\x1b[K\n"
	if got != want {
		t.Errorf("stderr =\n%q\nwant\n%q", got, want)
	}
}

func TestProgressTTYNewPhaseKeepsOldLine(t *testing.T) {
	p, _, errb := newTest(false, false)
	p.tty = true
	p.now = fakeClock(time.Millisecond)
	pr := p.Progress()
	pr(ProgressEvent{Stage: "erasing", Done: 0, Total: 10})
	pr(ProgressEvent{Stage: "writing", Part: "fs", Done: 0, Total: 0})
	want := "\rErasing ░░░░░░░░░░░░░░░░░░░░░░░░░░░░░░   0%  0 B / 10 B  0.0s\x1b[K\n" +
		"\rWriting fs  0 B  0.0s\x1b[K"
	if errb.String() != want {
		t.Errorf("stderr =\n%q\nwant\n%q", errb, want)
	}
}

func TestProgressJSON(t *testing.T) {
	p, out, errb := newTest(true, false)
	p.now = fakeClock(time.Millisecond)
	write(p.Progress(), "app", 200, 1) // 201 events, 101 distinct percentages
	lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
	if len(lines) != 101 {
		t.Errorf("got %d progress lines, want 101 (one per percent)", len(lines))
	}
	var last struct{ Progress ProgressEvent }
	for _, l := range lines {
		if err := json.Unmarshal([]byte(l), &last); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
	}
	if want := (ProgressEvent{Stage: "writing", Part: "app", Done: 200, Total: 200}); last.Progress != want {
		t.Errorf("last event = %+v, want %+v", last.Progress, want)
	}
	if out.Len() != 0 {
		t.Errorf("stdout = %q", out)
	}
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 4 << 20: "4.0 MiB"} {
		if got := humanBytes(n); got != want {
			t.Errorf("humanBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

// A bar never reaches the terminal's last column: a line that wraps can
// no longer be redrawn in place. What does not fit goes, least useful first.
func TestProgressBarFitsTerminal(t *testing.T) {
	ev := ProgressEvent{Stage: "writing", Part: "app", Done: 2048, Total: 4096}
	tests := []struct {
		width int
		want  string
	}{
		{0, "Writing app ███████████████░░░░░░░░░░░░░░░  50%  2.0 KiB / 4.0 KiB  1.0 KiB/s  2.0s  ETA 2.0s"},
		{120, "Writing app ███████████████░░░░░░░░░░░░░░░  50%  2.0 KiB / 4.0 KiB  1.0 KiB/s  2.0s  ETA 2.0s"},
		{80, "Writing app ███████████░░░░░░░░░░░  50%  2.0 KiB / 4.0 KiB  1.0 KiB/s  ETA 2.0s"},
		{70, "Writing app ████████████░░░░░░░░░░░  50%  2.0 KiB / 4.0 KiB  ETA 2.0s"},
		{50, "Writing app ███████████░░░░░░░░░░░  50%  ETA 2.0s"},
		{30, "Writing app ██████░░░░░░  50%"},
		{20, "Writing app  50%"},
		{10, "Writing a"},
	}
	for _, tt := range tests {
		p, _, _ := newTest(false, false)
		p.tty = true
		w := tt.width
		p.termWidth = func() int { return w }
		p.now = func() time.Time { return time.Unix(2, 0) }
		p.prog.start = time.Unix(0, 0)
		got := p.barLine(ev, percent(ev), p.now())
		if got != tt.want {
			t.Errorf("width %d:\n got %q\nwant %q", tt.width, got, tt.want)
		}
		if tt.width > 0 && len([]rune(got)) >= tt.width {
			t.Errorf("width %d: %d columns used", tt.width, len([]rune(got)))
		}
	}
}

func TestProgressJSONTiming(t *testing.T) {
	p, _, errb := newTest(true, false)
	p.now = fakeClock(time.Second)
	pr := p.Progress()
	pr(ProgressEvent{Stage: "verifying", Part: "app", Done: 0, Total: 100})
	pr(ProgressEvent{Stage: "verifying", Part: "app", Done: 50, Total: 100})
	pr(ProgressEvent{Stage: "verifying", Part: "app", Done: 100, Total: 100})
	var lines []progressLine
	for _, l := range strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n") {
		var v struct{ Progress progressLine }
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		lines = append(lines, v.Progress)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines: %s", len(lines), errb)
	}
	mid, last := lines[1], lines[2]
	if mid.ElapsedS != 1 || mid.RateBps == nil || *mid.RateBps != 50 || mid.ETAS == nil || *mid.ETAS != 1 || mid.Finished {
		t.Errorf("middle event %+v", mid)
	}
	if !last.Finished || last.ETAS != nil || last.Done != 100 {
		t.Errorf("last event %+v", last)
	}
}

func TestTask(t *testing.T) {
	tests := []struct {
		name      string
		json, tty bool
		err       error
		want, not []string
	}{
		{"plain", false, false, nil, []string{"Erasing flash...\n", "\nErasing flash: done in "}, nil},
		{"tty", false, true, nil, []string{"\rErasing flash ", "\rErasing flash: done in "}, nil},
		{"tty failed", false, true, contextCanceled(), []string{"\r\x1b[2K"}, []string{"done in"}},
		{"json", true, false, nil, []string{`{"progress":{"stage":"erasing","part":"flash","done":0,"total":0,"elapsed_s":`, `"finished":true`}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, out, errb := newTest(tt.json, false)
			p.tty = tt.tty
			err := p.Task("erasing", "flash", func(func(string, string)) error { time.Sleep(1300 * time.Millisecond); return tt.err })
			if err != tt.err {
				t.Errorf("err %v, want %v", err, tt.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%q", w, errb)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(errb.String(), w) {
					t.Errorf("stderr holds %q:\n%q", w, errb)
				}
			}
			if tt.tty && strings.Count(errb.String(), "\rErasing flash ") < 2 {
				t.Errorf("the spinner did not move:\n%q", errb)
			}
			if out.Len() != 0 {
				t.Errorf("stdout = %q", out)
			}
		})
	}
}

func TestTaskSteps(t *testing.T) {
	p, _, errb := newTest(false, false)
	err := p.Task("connecting", "", func(step func(string, string)) error {
		step("uploading", "flasher stub")
		step("changing", "to 921600 baud")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n")
	want := []string{"Connecting: done in", "Uploading flasher stub: done in", "Changing to 921600 baud: done in"}
	if len(lines) != len(want) {
		t.Fatalf("lines:\n%s", errb)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want %q...", i, lines[i], w)
		}
	}
}

// A region written in spans alternates writing and verifying: one line,
// redrawn, then a summary per stage; a region found unchanged at once gets
// its summary without a time.
func TestProgressTTYSpans(t *testing.T) {
	p, _, errb := newTest(false, false)
	p.tty = true
	p.now = fakeClock(100 * time.Millisecond)
	pr := p.Progress()
	pr(ProgressEvent{Stage: "unchanged", Part: "app", Done: 1024, Total: 1024})
	for _, ev := range []ProgressEvent{
		{Stage: "writing", Part: "fs", Done: 0, Total: 300},
		{Stage: "writing", Part: "fs", Done: 100, Total: 300},
		{Stage: "verifying", Part: "fs", Done: 0, Total: 300},
		{Stage: "verifying", Part: "fs", Done: 100, Total: 300},
		{Stage: "writing", Part: "fs", Done: 300, Total: 300},
		{Stage: "verifying", Part: "fs", Done: 300, Total: 300},
	} {
		pr(ev)
	}
	// What the terminal shows: each line's last redraw.
	var shown []string
	for _, line := range strings.Split(strings.TrimSuffix(errb.String(), "\n"), "\n") {
		parts := strings.Split(line, "\r")
		shown = append(shown, strings.TrimSuffix(parts[len(parts)-1], "\x1b[K"))
	}
	want := []string{"Unchanged app: 1.0 KiB", "Writing fs: 300 B in 0.4s", "Verifying fs: 300 B in 0.3s"}
	if strings.Join(shown, "\n") != strings.Join(want, "\n") {
		t.Errorf("screen:\n%s\nwant:\n%s\nraw %q", strings.Join(shown, "\n"), strings.Join(want, "\n"), errb)
	}
}
