package sim_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/sim"
)

// recorder is a firmware that says hello, restarts itself once, and
// records what the device handed it.
type recorder struct {
	mu      sync.Mutex
	known   string // the project name it recognises
	runs    []sim.App
	reasons []sim.ResetReason
}

func (r *recorder) Recognises(img *fwimage.Image) bool {
	return img.AppDesc != nil && img.AppDesc.ProjectName == r.known
}

func (r *recorder) Run(m *sim.Machine, app sim.App) error {
	r.mu.Lock()
	r.runs = append(r.runs, app)
	r.reasons = append(r.reasons, m.ResetReason())
	n := len(r.runs)
	r.mu.Unlock()
	if err := m.Send([]byte("hello from the app\n")); err != nil {
		return err
	}
	if n == 1 {
		return sim.ErrRestart
	}
	<-m.Context().Done()
	return m.Context().Err()
}

// The boot chain hands a valid app to the device's firmware when it
// recognises it, with where it was loaded from and why the chip reset; a
// restart the firmware asks for is a software reset through the ROM. An
// app nobody recognises runs silently.
func TestFirmwareHandOver(t *testing.T) {
	c, _ := chips.ByKey("esp32")
	for _, tc := range []struct {
		name  string
		known string
		runs  int
	}{
		{"recognised", "blinky", 2},
		{"not recognised", "other", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fw := &recorder{known: tc.known}
			dev, err := sim.New(sim.Config{Chip: c, Fast: true, Firmware: fw})
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			p, err := dev.Connect()
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			// the power-on boot must be over (it finds blank flash and
			// loops) before the app is written, or it would run the app
			// itself, as a power-on and not an EN reset
			if out := readFor(p, 200*time.Millisecond); !strings.Contains(out, "POWERON") {
				t.Fatalf("no power-on banner: %q", out)
			}
			writeBootableFlash(t, dev, false)
			dev.PressReset(false)
			out := readFor(p, 300*time.Millisecond)
			fw.mu.Lock()
			defer fw.mu.Unlock()
			if len(fw.runs) != tc.runs || strings.Count(out, "hello from the app") != tc.runs {
				t.Fatalf("%d runs; output:\n%s", len(fw.runs), out)
			}
			if tc.runs == 0 {
				if !strings.Contains(out, "Project name:     blinky") || dev.State() != "app" {
					t.Errorf("state %q, output:\n%s", dev.State(), out)
				}
				return
			}
			if fw.runs[0].Offset != 0x10000 || fw.runs[0].Image.AppDesc.Version != "1.2.3" {
				t.Errorf("app %+v", fw.runs[0])
			}
			if fw.reasons[0] != sim.ResetExternal || fw.reasons[1] != sim.ResetSoftware {
				t.Errorf("reset reasons %v, want external then software", fw.reasons)
			}
			if !strings.Contains(out, "rst:0xc (SW_CPU_RESET)") {
				t.Errorf("no software reset banner:\n%s", out)
			}
		})
	}
}
