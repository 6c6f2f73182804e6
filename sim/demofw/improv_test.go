package demofw_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mos-tool/mos/fwbundle"
	"github.com/mos-tool/mos/port"
)

// The "mos-demo-improv" build (firmware-images/esp32-improv-demo.zip)
// speaks Improv Wi-Fi over serial next to RPC. These tests write the
// packets byte by byte as the specification (improv-wifi.com/serial)
// gives them.

const improvBundle = "../../firmware-images/esp32-improv-demo.zip"

// The committed bundle is exactly what its spec builds (cmd/mos's
// TestDemoImagesReproducible covers the plain demos only).
func TestImprovBundleReproducible(t *testing.T) {
	m, srcs, err := fwbundle.BuildSpec("../../firmware-images/src/esp32-improv/spec.json")
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := fwbundle.Pack(&got, m, srcs); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(improvBundle)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("%s differs from what firmware-images/src/esp32-improv builds; run `make firmware-images`", improvBundle)
	}
	if m.Name != "mos-demo-improv" || m.Version != "1.0.0" {
		t.Errorf("manifest %s %s", m.Name, m.Version)
	}
}

// bootImprov flashes the Improv bundle into an ESP32 and boots it.
func bootImprov(t *testing.T, opts string) *demoConn {
	t.Helper()
	url := fmt.Sprintf("sim://esp32?fast=1&id=%s-%d%s", t.Name(), demoSeq.Add(1), opts)
	p, err := port.Open(context.Background(), url, 115200)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	dev := port.SimDevice(p)
	t.Cleanup(func() {
		p.Close()
		dev.Close()
	})
	if err := dev.ProgramBundle(improvBundle); err != nil {
		t.Fatal(err)
	}
	dc := &demoConn{t: t, p: p, dev: dev, grew: make(chan struct{}), nextID: 1000}
	go dc.collect()
	dc.reset()
	return dc
}

// improvPkt builds a packet: header, version 1, type, length, data, sum.
func improvPkt(typ byte, data []byte) []byte {
	p := append([]byte("IMPROV\x01"), typ, byte(len(data)))
	p = append(p, data...)
	var sum byte
	for _, b := range p {
		sum += b
	}
	return append(p, sum)
}

// improvRPC is an RPC command packet, ended by a newline as clients send
// them.
func improvRPC(cmd byte, args []byte) string {
	return string(improvPkt(3, append([]byte{cmd, byte(len(args))}, args...))) + "\n"
}

func wifiArgs(ssid, pass string) []byte {
	a := append([]byte{byte(len(ssid))}, ssid...)
	a = append(a, byte(len(pass)))
	return append(a, pass...)
}

// rxPkt is a packet the device sent.
type rxPkt struct {
	typ  byte
	data []byte
}

func (p rxPkt) String() string {
	switch p.typ {
	case 1:
		return fmt.Sprintf("state %d", p.data[0])
	case 2:
		return fmt.Sprintf("error %d", p.data[0])
	case 4:
		return fmt.Sprintf("result %d %q", p.data[0], p.strings())
	}
	return fmt.Sprintf("type %d % x", p.typ, p.data)
}

// strings decodes an RPC result's strings.
func (p rxPkt) strings() []string {
	var out []string
	d := p.data[2:]
	for len(d) > 0 && int(d[0]) < len(d) {
		out = append(out, string(d[1:1+d[0]]))
		d = d[1+d[0]:]
	}
	return out
}

// improvPackets picks the packets out of the output; it fails the test on
// a bad checksum or a packet not followed by a newline.
func improvPackets(t *testing.T, out string) []rxPkt {
	t.Helper()
	var list []rxPkt
	for {
		i := strings.Index(out, "IMPROV\x01")
		if i < 0 || len(out) < i+9 {
			return list
		}
		out = out[i:]
		n := int(out[8])
		if len(out) < 9+n+2 {
			return list
		}
		var sum byte
		for _, b := range []byte(out[:9+n]) {
			sum += b
		}
		if sum != out[9+n] || out[10+n] != '\n' {
			t.Fatalf("bad packet %q", out[:11+n])
		}
		list = append(list, rxPkt{out[7], []byte(out[9 : 9+n])})
		out = out[11+n:]
	}
}

// improvWait sends cmd and waits until the packets since then satisfy
// done; it returns them.
func (dc *demoConn) improvWait(req string, timeout time.Duration, done func([]rxPkt) bool) []rxPkt {
	dc.t.Helper()
	mark := dc.mark()
	dc.write(req)
	var got []rxPkt
	dc.waitUntil(mark, timeout, "Improv packets", func(s string) bool {
		got = improvPackets(dc.t, s)
		return done(got)
	})
	return got
}

// lastIs: the last packet is of type typ with first data byte b.
func lastIs(typ, b byte) func([]rxPkt) bool {
	return func(ps []rxPkt) bool {
		return len(ps) > 0 && ps[len(ps)-1].typ == typ && ps[len(ps)-1].data[0] == b
	}
}

func pktList(ps []rxPkt) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

func TestImprovStateInfoAndRPC(t *testing.T) {
	dc := bootImprov(t, "")
	var info struct{ ID, App string }
	dc.result("Sys.GetInfo", nil, &info)
	if info.App != "mos-demo-improv" {
		t.Fatalf("app %q", info.App)
	}
	ps := dc.improvWait(improvRPC(2, nil), 2*time.Second, lastIs(1, 2))
	if len(ps) != 1 {
		t.Errorf("current state: %s", pktList(ps))
	}
	ps = dc.improvWait(improvRPC(3, nil), 2*time.Second, lastIs(4, 3))
	want := []string{"mos-demo-improv", "1.0.0", "ESP32", info.ID}
	if got := ps[len(ps)-1].strings(); !slices.Equal(got, want) {
		t.Errorf("device info %q, want %q", got, want)
	}
	// RPC goes on working after Improv packets
	var fc int
	dc.result("Config.Get", map[string]any{"key": "rpc.uart.fc_type"}, &fc)
	if fc != 0 {
		t.Errorf("rpc.uart.fc_type %d: the Improv build has XON/XOFF off", fc)
	}
	// and the plain demo does not speak Improv
	plain := bootDemo(t, "esp32", "")
	mark := plain.mark()
	plain.write(improvRPC(2, nil))
	plain.call("RPC.Ping", nil)
	if ps := improvPackets(t, plain.since(mark)); len(ps) != 0 {
		t.Errorf("mos-demo answered Improv: %s", pktList(ps))
	}
}

func TestImprovProvision(t *testing.T) {
	dc := bootImprov(t, "")
	ps := dc.improvWait(improvRPC(1, wifiArgs("mos-demo-net", "demo-pass-1234")), 5*time.Second, lastIs(4, 1))
	mac := dc.dev.MAC()
	url := fmt.Sprintf("http://192.168.1.%d/", 100+int(mac[5])%100)
	if len(ps) != 3 || ps[0].String() != "state 3" || ps[1].String() != "state 4" ||
		!slices.Equal(ps[2].strings(), []string{url}) {
		t.Fatalf("provisioning: %s, want state 3, state 4, result 1 [%q]", pktList(ps), url)
	}
	if w := dc.wifiInfo(); w.Status != "got ip" || "http://"+w.StaIP+"/" != url || w.SSID != "mos-demo-net" {
		t.Errorf("GetInfo after provisioning: %+v", w)
	}
	var sta struct {
		Enable     bool
		SSID, Pass string
	}
	dc.result("Config.Get", map[string]any{"key": "wifi.sta"}, &sta)
	if !sta.Enable || sta.SSID != "mos-demo-net" || sta.Pass != "demo-pass-1234" {
		t.Errorf("wifi.sta after provisioning: %+v", sta)
	}
	// provisioned: the state comes with the URL
	ps = dc.improvWait(improvRPC(2, nil), 2*time.Second, lastIs(4, 2))
	if pktList(ps) != fmt.Sprintf("state 4, result 2 [%q]", url) {
		t.Errorf("current state: %s", pktList(ps))
	}
	// the settings were saved: after a reset the station joins by itself
	mark := dc.mark()
	dc.reset()
	dc.waitFor(mark, "WiFi STA: ready", 5*time.Second)
	ps = dc.improvWait(improvRPC(2, nil), 2*time.Second, lastIs(4, 2))
	if pktList(ps) != fmt.Sprintf("state 4, result 2 [%q]", url) {
		t.Errorf("current state after reboot: %s", pktList(ps))
	}
}

func TestImprovUnableToConnect(t *testing.T) {
	for _, tc := range []struct{ ssid, pass, reason string }{
		{"mos-demo-net", "wrong-password", "reason: 202"},
		{"NoSuchNet", "whatever", "reason: 201"},
	} {
		t.Run(tc.ssid, func(t *testing.T) {
			dc := bootImprov(t, "")
			mark := dc.mark()
			ps := dc.improvWait(improvRPC(1, wifiArgs(tc.ssid, tc.pass)), 5*time.Second, lastIs(2, 3))
			if pktList(ps) != "state 3, state 2, error 3" {
				t.Errorf("packets %s, want state 3, state 2, error 3", pktList(ps))
			}
			if out := dc.since(mark); !strings.Contains(out, tc.reason) || !strings.Contains(out, "Improv: unable to connect to "+tc.ssid) {
				t.Errorf("log:\n%s", out)
			}
			var enable bool
			dc.result("Config.Get", map[string]any{"key": "wifi.sta.enable"}, &enable)
			if enable {
				t.Error("failed settings were saved")
			}
			if ps := dc.improvWait(improvRPC(2, nil), 2*time.Second, lastIs(1, 2)); len(ps) != 1 {
				t.Errorf("state after failure: %s", pktList(ps))
			}
		})
	}
}

func TestImprovScan(t *testing.T) {
	dc := bootImprov(t, "&wifi=Lab:wpa2:-40:3:lab-pass-99,Cafe:open:-90:13,Lab:wpa2:-70:6:lab-pass-99")
	ps := dc.improvWait(improvRPC(4, nil), 5*time.Second, func(ps []rxPkt) bool {
		return len(ps) > 0 && ps[len(ps)-1].typ == 4 && len(ps[len(ps)-1].data) == 2
	})
	want := `result 4 ["Lab" "-40" "YES"], result 4 ["Cafe" "-90" "NO"], result 4 []`
	if pktList(ps) != want {
		t.Errorf("scan: %s\nwant: %s", pktList(ps), want)
	}
}

func TestImprovBadPackets(t *testing.T) {
	dc := bootImprov(t, "")
	bad := []byte(improvRPC(2, nil))
	bad[len(bad)-2]++ // checksum
	for _, tc := range []struct {
		name, req string
		code      byte
	}{
		{"checksum", string(bad), 1},
		{"unknown command", improvRPC(0x05, nil), 2},
		{"RPC length", string(improvPkt(3, []byte{2, 3, 0})) + "\n", 1},
		{"SSID too long", improvRPC(1, wifiArgs(strings.Repeat("s", 33), "x")), 1},
		{"empty SSID", improvRPC(1, wifiArgs("", "x")), 1},
		{"trailing bytes", improvRPC(1, append(wifiArgs("mos-demo-net", "x"), 0)), 1},
	} {
		ps := dc.improvWait(tc.req, 2*time.Second, lastIs(2, tc.code))
		if len(ps) != 1 {
			t.Errorf("%s: %s", tc.name, pktList(ps))
		}
	}
	// another version is not a packet for this firmware: no answer, and
	// the next request is served
	other := improvPkt(3, []byte{2, 0})
	other[6] = 2
	mark := dc.mark()
	dc.write(string(other) + "\n")
	dc.call("RPC.Ping", nil)
	if ps := improvPackets(t, dc.since(mark)); len(ps) != 0 {
		t.Errorf("version 2 answered: %s", pktList(ps))
	}
}

// An Improv packet's bytes never reach RPC framing: credentials holding
// a newline, `"""` and a whole RPC frame, and a checksum >= 0x80, sent
// right before an RPC frame with no newline between.
func TestImprovBytesKeptFromRPC(t *testing.T) {
	dc := bootImprov(t, "")
	ssid := `{"id":77,"method":"Sys.Reboot"}` // 31 bytes
	pass := "\n\"\"\"{\"id\":78,\"method\":\"RPC.Ping\"}\"\"\"\n{"
	pkt := improvPkt(3, append([]byte{1, byte(len(wifiArgs(ssid, pass)))}, wifiArgs(ssid, pass)...))
	body, id := dc.request("RPC.Ping", nil)
	mark := dc.mark()
	dc.write(string(pkt) + frame(body)[1:]) // the frame without its leading newline
	r := dc.waitReply(mark, id, 2*time.Second)
	if r.Error != nil {
		t.Errorf("RPC.Ping after the packet: %s", r.raw)
	}
	dc.waitUntil(mark, 5*time.Second, "unable to connect", func(s string) bool { return lastIs(2, 3)(improvPackets(t, s)) })
	out := dc.since(mark)
	for _, r := range replies(out) {
		if string(r.ID) != fmt.Sprint(id) {
			t.Errorf("Improv bytes reached RPC framing: reply %s", r.raw)
		}
	}
	if strings.Contains(out, "Invalid frame") || strings.Contains(out, "rst:") {
		t.Errorf("Improv bytes reached RPC framing:\n%q", out)
	}
}

// The packets' bytes may be 0x11 and 0x13: with XON/XOFF off by default
// the Improv build receives them.
func TestImprovFlowControlBytes(t *testing.T) {
	dc := bootImprov(t, "&wifi=seventeen-chars-1:wpa2:-50:1:nineteen-characters")
	args := wifiArgs("seventeen-chars-1", "nineteen-characters")
	if args[0] != 0x11 || args[18] != 0x13 {
		t.Fatalf("lengths % x", args)
	}
	ps := dc.improvWait(improvRPC(1, args), 5*time.Second, lastIs(4, 1))
	if len(ps) != 3 || ps[1].String() != "state 4" {
		t.Errorf("provisioning: %s", pktList(ps))
	}
}

// Improv settings replace those of the configuration: its retry loop
// stops.
func TestImprovTakesOverWiFi(t *testing.T) {
	dc := bootImprov(t, "")
	mark := dc.joinWiFi("NoSuchNet", "whatever")
	dc.waitFor(mark, "att 2", 5*time.Second) // retrying
	ps := dc.improvWait(improvRPC(1, wifiArgs("mos-demo-net", "demo-pass-1234")), 5*time.Second, lastIs(4, 1))
	if len(ps) != 3 {
		t.Fatalf("provisioning: %s", pktList(ps))
	}
	after := dc.mark()
	time.Sleep(300 * time.Millisecond) // three retry periods in fast mode
	if out := dc.since(after); strings.Contains(out, "Trying NoSuchNet") {
		t.Errorf("the old network is still tried:\n%s", out)
	}
	if w := dc.wifiInfo(); w.Status != "got ip" || w.SSID != "mos-demo-net" {
		t.Errorf("GetInfo: %+v", w)
	}
	var sta struct{ SSID string }
	dc.result("Config.Get", map[string]any{"key": "wifi.sta"}, &sta)
	if sta.SSID != "mos-demo-net" {
		t.Errorf("saved SSID %q", sta.SSID)
	}
}
