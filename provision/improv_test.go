package provision_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/provision"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/demofw"
)

// The Improv client against the virtual device running the Improv build
// of the demo (firmware-images/esp32-improv-demo.zip), and against a
// scripted port for what a real line adds (noise, damaged packets).

// bootImprovDevice programs a bundle into a fresh ESP32's flash, boots it
// and returns a port to it (fast mode).
func bootImprovDevice(t *testing.T, bundle, opts string) (port.Port, *sim.Device) {
	t.Helper()
	url := fmt.Sprintf("sim://esp32?fast=1&id=improv-%s-%d%s", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano(), opts)
	hp, err := sim.Open(url, demofw.New)
	if err != nil {
		t.Fatal(err)
	}
	dev := hp.Device()
	t.Cleanup(func() { dev.Close() })
	if err := dev.ProgramBundle(bundle); err != nil {
		t.Fatal(err)
	}
	hp.Close()
	dev.PressReset(false)
	p, err := port.Open(t.Context(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p, dev
}

// improvClient boots the Improv build and checks that it is detected.
func improvClient(t *testing.T, opts string, o provision.ImprovOptions) (*provision.Improv, *sim.Device) {
	t.Helper()
	p, dev := bootImprovDevice(t, "../firmware-images/esp32-improv-demo.zip", opts)
	m := provision.NewImprov(p, o)
	ok, err := m.Detect(t.Context())
	if err != nil || !ok {
		t.Fatalf("Detect = %v, %v", ok, err)
	}
	return m, dev
}

type exitCoder interface{ ExitCode() int }

func TestImprovSimInfoStateScan(t *testing.T) {
	m, dev := improvClient(t, "", provision.ImprovOptions{})
	info, err := m.DeviceInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	mac := dev.MAC()
	want := provision.ImprovInfo{Firmware: "mos-demo-improv", Version: "1.0.0", Chip: "ESP32",
		Name: fmt.Sprintf("esp32_%02X%02X%02X", mac[3], mac[4], mac[5]), Extra: []string{}}
	if fmt.Sprint(*info) != fmt.Sprint(want) {
		t.Errorf("DeviceInfo = %+v, want %+v", *info, want)
	}
	st, url, err := m.CurrentState(t.Context())
	if err != nil || st != provision.ImprovAuthorized || url != "" {
		t.Errorf("CurrentState = %v %q %v", st, url, err)
	}
	nets, err := m.Scan(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	wantNets := []provision.ImprovNetwork{{"mos-demo-net", -52, true}, {"CoffeeShop", -71, false}, {"Neighbor", -83, true}}
	if !slices.Equal(nets, wantNets) {
		t.Errorf("Scan = %+v, want %+v", nets, wantNets)
	}
}

func TestImprovSimProvision(t *testing.T) {
	var mu sync.Mutex
	var log []string
	m, dev := improvClient(t, "", provision.ImprovOptions{Log: func(l string) {
		mu.Lock()
		log = append(log, l)
		mu.Unlock()
	}})
	r, err := m.ProvisionWiFi(t.Context(), "mos-demo-net", "demo-pass-1234")
	if err != nil {
		t.Fatal(err)
	}
	ip := fmt.Sprintf("192.168.1.%d", 100+int(dev.MAC()[5])%100)
	if r.SSID != "mos-demo-net" || r.IP != ip || r.URL != "http://"+ip+"/" {
		t.Errorf("ProvisionWiFi = %+v, want IP %s", r, ip)
	}
	st, url, err := m.CurrentState(t.Context())
	if err != nil || st != provision.ImprovProvisioned || url != r.URL {
		t.Errorf("CurrentState = %v %q %v", st, url, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.ContainsFunc(log, func(l string) bool { return strings.Contains(l, "WiFi STA: ready, IP "+ip) }) {
		t.Errorf("the device's log did not reach Log: %q", log)
	}
	for _, l := range log {
		if strings.Contains(l, "IMPROV") {
			t.Errorf("a packet reached Log: %q", l)
		}
	}
}

func TestImprovSimUnableToConnect(t *testing.T) {
	for _, tc := range []struct {
		ssid, pass string
		exit       int
		class      error
	}{
		{"mos-demo-net", "wrong-password", 11, provision.ErrWiFiWrongPassword},
		{"NoSuchNet", "whatever", 12, provision.ErrWiFiNotFound},
	} {
		t.Run(tc.ssid, func(t *testing.T) {
			m, _ := improvClient(t, "", provision.ImprovOptions{})
			_, err := m.ProvisionWiFi(t.Context(), tc.ssid, tc.pass)
			var ce *provision.ImprovConnectError
			var we *provision.WiFiError
			var ec exitCoder
			if !errors.As(err, &ce) || !ce.Scanned || !errors.Is(err, tc.class) || !errors.As(err, &we) ||
				!errors.As(err, &ec) || ec.ExitCode() != tc.exit {
				t.Fatalf("ProvisionWiFi: %v (%T), want exit %d, %v", err, err, tc.exit, tc.class)
			}
			if st, _, err := m.CurrentState(t.Context()); err != nil || st != provision.ImprovAuthorized {
				t.Errorf("CurrentState after the failure: %v %v", st, err)
			}
		})
	}
}

// The WiFiJoiner face: the same result type and status notes.
func TestImprovSimJoinWiFi(t *testing.T) {
	m, _ := improvClient(t, "&wifi=Lab:wpa2:-40:3:lab-pass-99", provision.ImprovOptions{})
	var notes []string
	var j provision.WiFiJoiner = m
	r, err := j.JoinWiFi(t.Context(), "Lab", "lab-pass-99", provision.WiFiOptions{Status: func(s string) { notes = append(notes, s) }})
	if err != nil || r.SSID != "Lab" || !strings.HasPrefix(r.IP, "192.168.1.") {
		t.Fatalf("JoinWiFi = %+v, %v", r, err)
	}
	if len(notes) != 2 || !strings.Contains(notes[1], `waiting for the device to join "Lab"`) {
		t.Errorf("status notes %q", notes)
	}
	_, err = j.JoinWiFi(t.Context(), strings.Repeat("x", 33), "p", provision.WiFiOptions{})
	var ec exitCoder
	if !errors.As(err, &ec) || ec.ExitCode() != 2 {
		t.Errorf("33-byte SSID: %v", err)
	}
}

// Firmware without Improv (the plain demo serves RPC only) is not
// detected, within the detect timeout.
func TestImprovSimNotDetected(t *testing.T) {
	p, _ := bootImprovDevice(t, "../firmware-images/esp32-demo.zip", "")
	m := provision.NewImprov(p, provision.ImprovOptions{DetectTimeout: 400 * time.Millisecond, Timeout: 300 * time.Millisecond})
	start := time.Now()
	ok, err := m.Detect(t.Context())
	if ok || err != nil {
		t.Fatalf("Detect = %v, %v", ok, err)
	}
	if d := time.Since(start); d < 400*time.Millisecond || d > 2*time.Second {
		t.Errorf("Detect took %v", d)
	}
	_, err = m.DeviceInfo(t.Context())
	var nr *provision.NoReplyError
	if !errors.As(err, &nr) {
		t.Errorf("DeviceInfo from firmware without Improv: %v", err)
	}
}

// scriptPort answers each write with the next scripted output.
type scriptPort struct {
	mu      sync.Mutex
	replies [][]byte
	out     []byte
	wrote   [][]byte
	timeout time.Duration
	closed  bool
}

func (s *scriptPort) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wrote = append(s.wrote, append([]byte(nil), p...))
	if len(s.replies) > 0 {
		s.out = append(s.out, s.replies[0]...)
		s.replies = s.replies[1:]
	}
	return len(p), nil
}

func (s *scriptPort) Read(p []byte) (int, error) {
	s.mu.Lock()
	if len(s.out) == 0 {
		s.mu.Unlock()
		time.Sleep(s.timeout)
		return 0, port.ErrTimeout
	}
	defer s.mu.Unlock()
	n := copy(p, s.out[:min(len(s.out), 7)]) // in small pieces
	s.out = s.out[n:]
	return n, nil
}

func (s *scriptPort) Close() error                         { s.closed = true; return nil }
func (s *scriptPort) SetReadTimeout(d time.Duration) error { s.timeout = d; return nil }
func (s *scriptPort) SetBaudRate(int) error                { return nil }
func (s *scriptPort) BaudRate() int                        { return 115200 }
func (s *scriptPort) SetDTR(bool) error                    { return nil }
func (s *scriptPort) SetRTS(bool) error                    { return nil }
func (s *scriptPort) ResetInputBuffer() error              { return nil }
func (s *scriptPort) Drain() error                         { return nil }
func (s *scriptPort) Name() string                         { return "script" }

func pkt(typ byte, data ...byte) []byte {
	p := append([]byte("IMPROV\x01"), typ, byte(len(data)))
	p = append(p, data...)
	var sum byte
	for _, b := range p {
		sum += b
	}
	return append(p, sum, '\n')
}

func result(cmd byte, strs ...string) []byte {
	d := []byte{cmd, 0}
	for _, s := range strs {
		d = append(d, byte(len(s)))
		d = append(d, s...)
	}
	d[1] = byte(len(d) - 2)
	return pkt(4, d...)
}

// Packets are found among log text, after lookalikes and damaged ones;
// the text reaches Log whole, and what the client sends is the packet of
// the specification.
func TestImprovClientParsesNoisyLine(t *testing.T) {
	damaged := result(3, "bad", "1", "X", "y")
	damaged[12] ^= 0x20
	var out []byte
	out = append(out, "boot: hello\r\nIMPROV is a protocol\nIMPROV\x02\x01\x01\x02\x00\n"...)
	out = append(out, damaged...)
	out = append(out, "log line one\n"...)
	out = append(out, result(3, "fw", "2.0", "ESP32-C3", "dev-1", "OS", "9")...)
	out = append(out, "tail\n"...)
	sp := &scriptPort{replies: [][]byte{out}}
	var log []string
	m := provision.NewImprov(sp, provision.ImprovOptions{Timeout: time.Second, Log: func(l string) { log = append(log, l) }})
	info, err := m.DeviceInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.Firmware != "fw" || info.Version != "2.0" || info.Chip != "ESP32-C3" || info.Name != "dev-1" || !slices.Equal(info.Extra, []string{"OS", "9"}) {
		t.Errorf("DeviceInfo = %+v", info)
	}
	// "IMPROV" + 3 + 2 (command 3, no data) + checksum + newline
	if want := "IMPROV\x01\x03\x02\x03\x00\xe6\n"; string(sp.wrote[0]) != want {
		t.Errorf("sent %q, want %q", sp.wrote[0], want)
	}
	// the next command reads on: the tail line is logged then
	sp.replies = [][]byte{pkt(2, 2)}
	_, err = m.Scan(context.Background())
	var ie *provision.ImprovError
	if !errors.As(err, &ie) || ie.Code != provision.ImprovErrUnknownRPC {
		t.Errorf("Scan: %v", err)
	}
	if len(log) < 4 || log[0] != "boot: hello" || log[1] != "IMPROV is a protocol" || !slices.Contains(log, "log line one") || log[len(log)-1] != "tail" {
		t.Errorf("log %q", log)
	}
	// no answer: a NoReplyError naming the command
	sp.replies = nil
	_, err = m.DeviceInfo(context.Background())
	var nr *provision.NoReplyError
	if !errors.As(err, &nr) || !strings.Contains(nr.Method, "device info") {
		t.Errorf("no answer: %v", err)
	}
}

// Provisioning that outlasts its timeout is a WiFiError with
// ErrWiFiTimeout, carrying the last state.
func TestImprovProvisionTimeout(t *testing.T) {
	sp := &scriptPort{replies: [][]byte{pkt(1, 3)}}
	m := provision.NewImprov(sp, provision.ImprovOptions{ProvisionTimeout: 200 * time.Millisecond})
	_, err := m.ProvisionWiFi(context.Background(), "net", "pass")
	var we *provision.WiFiError
	if !errors.As(err, &we) || we.Err != provision.ErrWiFiTimeout || we.Status != "improv: provisioning" {
		t.Fatalf("ProvisionWiFi: %v", err)
	}
	want := "IMPROV\x01\x03\x0b\x01\x09\x03net\x04pass"
	if got := string(sp.wrote[0]); !strings.HasPrefix(got, want) || len(got) != len(want)+2 {
		t.Errorf("sent %q", got)
	}
}
