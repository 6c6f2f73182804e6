package sim

import (
	"bytes"
	"context"
	"math"
	"testing"
	"time"

	"github.com/mos-tool/mos/chips"
)

func TestParseNoise(t *testing.T) {
	tests := []struct {
		in      string
		want    Noise
		wantErr bool
	}{
		{"0.001", Noise{Rate: 0.001, Seed: 1, Dir: "both"}, false},
		{"1e-4,seed=7,dir=to-host,baud=460800", Noise{Rate: 1e-4, Seed: 7, Dir: "to-host", MinBaud: 460800}, false},
		{"0.5,dir=to-device", Noise{Rate: 0.5, Seed: 1, Dir: "to-device"}, false},
		{"2", Noise{}, true},
		{"-0.1", Noise{}, true},
		{"often", Noise{}, true},
		{"0.1,dir=sideways", Noise{}, true},
		{"0.1,seed=x", Noise{}, true},
		{"0.1,colour=red", Noise{}, true},
	}
	for _, tt := range tests {
		got, err := ParseNoise(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseNoise(%q) error %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("ParseNoise(%q) = %+v, want %+v", tt.in, got, tt.want)
		}
	}
	cfg, _, err := ParseURL("sim://esp32?noise=0.01,seed=3,baud=921600")
	if err != nil || cfg.Noise != (Noise{Rate: 0.01, Seed: 3, Dir: "both", MinBaud: 921600}) {
		t.Fatalf("ParseURL noise: %+v, %v", cfg.Noise, err)
	}
}

// carry sends data over a fresh line with noise n at baud and returns what
// the receiver gets.
func carry(t *testing.T, n Noise, baud int, data []byte) []byte {
	t.Helper()
	l := newLine(true, 0)
	l.setNoise(n, true, 0)
	ctx := context.Background()
	for i := 0; i < len(data); i += 1000 {
		if err := l.send(ctx, data[i:min(len(data), i+1000)], baud, 0); err != nil {
			t.Fatal(err)
		}
	}
	var out []byte
	buf := make([]byte, 4096)
	for {
		k, err := l.recv(ctx, buf, func() int { return baud }, time.Now().Add(10*time.Millisecond))
		if err == errTimeout {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:k]...)
	}
}

func TestNoiseCorruptsAndLosesBytes(t *testing.T) {
	data := bytes.Repeat([]byte{0x55}, 200000)
	const rate = 0.01
	got := carry(t, Noise{Rate: rate, Seed: 9}, 921600, data)
	lost := len(data) - len(got)
	flipped := 0
	for _, b := range got {
		if b != 0x55 {
			flipped++
		}
	}
	// about half of the errors lose the byte, half flip one bit
	want := rate * float64(len(data)) / 2
	for name, n := range map[string]int{"lost": lost, "corrupted": flipped} {
		if math.Abs(float64(n)-want) > 0.2*want {
			t.Errorf("%d bytes %s of %d at rate %g; want about %.0f", n, name, len(data), rate, want)
		}
	}
	again := carry(t, Noise{Rate: rate, Seed: 9}, 921600, data)
	if !bytes.Equal(got, again) {
		t.Error("the same seed and traffic gave different errors")
	}
	other := carry(t, Noise{Rate: rate, Seed: 10}, 921600, data)
	if bytes.Equal(got, other) {
		t.Error("another seed gave the same errors")
	}
}

func TestNoiseBelowMinBaudIsClean(t *testing.T) {
	data := bytes.Repeat([]byte{0xA5}, 50000)
	n := Noise{Rate: 0.05, Seed: 1, MinBaud: 921600}
	if got := carry(t, n, 115200, data); !bytes.Equal(got, data) {
		t.Fatal("noise at 115200 although it starts at 921600")
	}
	if got := carry(t, n, 921600, data); bytes.Equal(got, data) {
		t.Fatal("no noise at 921600")
	}
}

func TestNoiseDirection(t *testing.T) {
	c, err := chips.ByKey("esp32")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Config{Chip: c, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.SetNoise(Noise{Rate: 0.5, Seed: 1, Dir: "to-host"})
	if d.toHost.noise == nil || d.toDev.noise != nil {
		t.Fatalf("dir=to-host: to host %v, to device %v", d.toHost.noise != nil, d.toDev.noise != nil)
	}
	d.SetNoise(Noise{Rate: 0.5, Seed: 1, Dir: "to-device"})
	if d.toHost.noise != nil || d.toDev.noise == nil {
		t.Fatalf("dir=to-device: to host %v, to device %v", d.toHost.noise != nil, d.toDev.noise != nil)
	}
	d.SetNoise(Noise{})
	if d.toHost.noise != nil || d.toDev.noise != nil {
		t.Fatal("a zero Noise left the wire noisy")
	}
}
