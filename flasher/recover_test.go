package flasher

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/sim"
)

// noisyWrite opens a virtual chip, gets a session ready on a clean wire,
// then turns the noise on and writes data. It returns the report, the
// warnings, the error, and whether the flash holds the data.
func noisyWrite(t *testing.T, chip string, noStub bool, n sim.Noise, data []byte) (RegionReport, []string, error, bool) {
	t.Helper()
	p, err := port.Open(context.Background(), "sim://"+chip+"?fast=1", 115200)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	dev := port.SimDevice(p)
	l := openSession(t, p, 921600, noStub)
	dev.SetNoise(n)
	var warned []string
	rep, err := l.WriteRegions(context.Background(), []Region{{Name: "app", Addr: 0x10000, Data: data}},
		WriteOptions{Warn: func(m string) { warned = append(warned, m) }})
	got := make([]byte, len(data))
	if rerr := dev.Flash().ReadAt(got, 0x10000); rerr != nil {
		t.Fatal(rerr)
	}
	return rep[0], warned, err, bytes.Equal(got, data)
}

// A noisy wire in the middle of a write: replies lost or garbled (the
// device took the block, the host cannot know), blocks garbled on their
// way (the device refuses them). Whatever the noise hits, the write ends
// with the right bytes on flash, without a block ever reaching the stub
// twice (the virtual stub, like the real ones, would write it twice).
// Each case tries seeds until the noise has hit what the case is about;
// every run on the way must end right too.
func TestNoisyWireEndsWithTheRightBytes(t *testing.T) {
	cases := []struct {
		name   string
		chip   string
		noStub bool
		noise  sim.Noise
		hit    func(RegionReport, []string) bool // the noise hit what the case is about
		state  string
	}{
		{"stub: lost or garbled reply to a compressed block", "esp32", false, sim.Noise{Rate: 0.01, Dir: "to-host"},
			func(r RegionReport, w []string) bool { return r.Restarts > 0 && mentions(w, "command 0x11") }, StateVerified},
		{"stub: a reply lost outright", "esp32c3", false, sim.Noise{Rate: 0.01, Dir: "to-host"},
			func(r RegionReport, w []string) bool { return mentions(w, "no reply to command 0x11") }, StateVerified},
		{"stub: blocks garbled on the way", "esp32", false, sim.Noise{Rate: 2e-5, Dir: "to-device"},
			func(r RegionReport, w []string) bool { return r.BlocksResent > 0 }, StateVerified},
		{"esp8266 stub: both ways", "esp8266", false, sim.Noise{Rate: 2e-5, Dir: "both"},
			func(r RegionReport, w []string) bool { return r.Restarts > 0 }, StateVerified},
		{"ROM: lost or garbled reply to a compressed block", "esp32", true, sim.Noise{Rate: 0.002, Dir: "to-host"},
			func(r RegionReport, w []string) bool { return r.Restarts > 0 && mentions(w, "command 0x11") }, StateVerified},
		{"ESP8266 ROM: lost reply, nothing to hash with", "esp8266", true, sim.Noise{Rate: 0.002, Dir: "to-host"},
			func(r RegionReport, w []string) bool { return r.Restarts > 0 && mentions(w, "command 0x03") }, StateUnverified},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := image(192<<10, 5)
			for seed := int64(1); ; seed++ {
				if seed > 30 {
					t.Fatal("no seed up to 30 made the noise hit what this case is about")
				}
				n := tc.noise
				n.Seed = seed
				rep, warned, err, ok := noisyWrite(t, tc.chip, tc.noStub, n, data)
				if err != nil || !ok || rep.State != tc.state {
					t.Fatalf("seed %d: err %v, flash holds the data: %v, report %+v\nwarnings:\n%s", seed, err, ok, rep, strings.Join(warned, "\n"))
				}
				if tc.hit(rep, warned) {
					t.Logf("seed %d: %d restarts, %d blocks resent; %s", seed, rep.Restarts, rep.BlocksResent, strings.Join(warned, "; "))
					return
				}
			}
		})
	}
}

func mentions(warned []string, s string) bool {
	for _, w := range warned {
		if strings.Contains(w, s) {
			return true
		}
	}
	return false
}

// A hopeless line ends in bounded time with a LinkError (exit code 6,
// "no answer") that names the region, not in a hang.
func TestHopelessLineGivesUp(t *testing.T) {
	start := time.Now()
	rep, _, err, _ := noisyWrite(t, "esp32", false, sim.Noise{Rate: 0.2, Seed: 1, Dir: "both"}, image(64<<10, 1))
	var le *LinkError
	if !errors.As(err, &le) || le.Region != "app" {
		t.Fatalf("err = %v, want a *LinkError for app", err)
	}
	if code := output.ExitCode(err); code != output.ExitNoAnswer {
		t.Fatalf("exit code %d, want %d", code, output.ExitNoAnswer)
	}
	if rep.State != StateFailed || !strings.Contains(err.Error(), "gave up on app at 0x10000") {
		t.Fatalf("report %+v, error %q", rep, err)
	}
	if d := time.Since(start); d > 90*time.Second {
		t.Fatalf("giving up took %v", d)
	}
}

// The sim:// option itself, from power-on: a marginal cable that works at
// 115200 and garbles replies at 921600, where the ESP8266's stub works.
func TestNoiseOptionOnTheAddress(t *testing.T) {
	data := image(128<<10, 3)
	for seed := 1; seed <= 30; seed++ {
		url := fmt.Sprintf("sim://esp8266?fast=1&noise=0.005,seed=%d,dir=to-host,baud=921600", seed)
		p, err := port.Open(context.Background(), url, 115200)
		if err != nil {
			t.Fatal(err)
		}
		dev := port.SimDevice(p)
		l, err := Open(context.Background(), p, SessionOptions{Baud: 921600})
		if err == nil {
			err = l.AttachFlash(context.Background(), 4<<20)
		}
		if err != nil {
			// the noise hit the setup, which this test is not about
			p.Close()
			continue
		}
		rep, err := l.WriteRegions(context.Background(), []Region{{Name: "app", Addr: 0x10000, Data: data}}, WriteOptions{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		checkFlash(t, dev, 0x10000, data)
		p.Close()
		if rep[0].Restarts > 0 {
			return
		}
	}
	t.Fatal("no seed up to 30 made the noise hit the write")
}

// The bytes kept around an unaligned region are read over the same noisy
// line: whatever arrives garbled is read again, never written back.
func TestNoisyLineKeepsTheBytesAroundARegion(t *testing.T) {
	for seed := int64(1); seed <= 4; seed++ {
		p, err := port.Open(context.Background(), "sim://esp32?fast=1", 115200)
		if err != nil {
			t.Fatal(err)
		}
		dev := port.SimDevice(p)
		l := openSession(t, p, 921600, false)
		old := fillFlash(t, dev)
		dev.SetNoise(sim.Noise{Rate: 0.001, Seed: seed, Dir: "to-host"})
		data := image(0x6000, seed)
		_, err = l.WriteRegions(context.Background(), []Region{{Name: "part", Addr: 0x21004, Data: data}}, WriteOptions{})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		want := wantFlash(old, 0x21004, data)
		if got := flashBytes(t, dev); !bytes.Equal(got, want) {
			t.Fatalf("seed %d: %s", seed, firstDiff(got, want))
		}
		p.Close()
	}
}
