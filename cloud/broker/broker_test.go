package broker

import (
	"crypto/x509"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/cloud/ca"
)

// syncBuf is a log sink shared by the broker's goroutines and the test.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startEmbedded(t *testing.T, fleet *ca.CA, log *syncBuf, onMsg func(string, string, []byte)) string {
	t.Helper()
	dir := t.TempDir()
	srv, issued, err := ServerCertificate(fleet, dir, []string{"127.0.0.1"}, func() error { return fleet.Unlock(testPass) })
	if err != nil || !issued {
		t.Fatalf("server certificate: %v (issued %v)", err, issued)
	}
	// A second call reuses the certificate without the passphrase.
	if _, issued, err := ServerCertificate(fleet, dir, []string{"127.0.0.1"}, func() error { t.Fatal("unlock called again"); return nil }); err != nil || issued {
		t.Fatalf("reuse: %v (issued %v)", err, issued)
	}
	b, err := Start(Options{Listen: "127.0.0.1:0", CA: fleet, Server: srv, Monitors: []string{"fleet-monitor"}, OnMessage: onMsg,
		Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b.Addr().String()
}

func TestEmbeddedBroker(t *testing.T) {
	fleet := newFleet(t)
	dev1, _ := issueIdentity(t, fleet, "esp32-0001", ca.SignOptions{})
	dev2, _ := issueIdentity(t, fleet, "esp32-0002", ca.SignOptions{})
	monitor, _ := issueIdentity(t, fleet, "fleet-monitor", ca.SignOptions{})
	expired, _ := issueIdentity(t, fleet, "esp32-0003", ca.SignOptions{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	later, laterCert := issueIdentity(t, fleet, "esp32-0004", ca.SignOptions{})
	stranger, _ := issueIdentity(t, newFleet(t), "esp32-0001", ca.SignOptions{})

	var mu sync.Mutex
	var seen []string
	log := &syncBuf{}
	addr := startEmbedded(t, fleet, log, func(id, topic string, p []byte) {
		mu.Lock()
		seen = append(seen, id+" "+topic+" "+string(p))
		mu.Unlock()
	})
	roots := x509.NewCertPool()
	roots.AddCert(fleet.Root)

	got := newReceived()
	mon, err := connect(addr, roots, monitor, got.handler)
	if err != nil {
		t.Fatalf("monitor: %v", err)
	}
	defer mon.Disconnect(100)
	if tok := mon.Subscribe("devices/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	c1, err := connect(addr, roots, dev1, nil)
	if err != nil {
		t.Fatalf("device 1: %v", err)
	}
	defer c1.Disconnect(100)
	c1.Publish("devices/esp32-0001/events", 1, false, "hello").WaitTimeout(5 * time.Second)
	if m := got.next(t, 5*time.Second); m == nil || m.Topic() != "devices/esp32-0001/events" || string(m.Payload()) != "hello" {
		t.Fatalf("hello not received (%v)", m)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0] != "esp32-0001 devices/esp32-0001/events hello" {
		t.Errorf("OnMessage saw %q", seen)
	}
	mu.Unlock()

	c2, err := connect(addr, roots, dev2, nil)
	if err != nil {
		t.Fatalf("device 2: %v", err)
	}
	defer c2.Disconnect(100)
	// A forbidden QoS 0 message is dropped silently (MQTT 3.1.1 has no
	// way to refuse it); messages of one session are delivered in order,
	// so once device 2's own message arrives the forged one is known lost.
	c2.Publish("devices/esp32-0001/events", 0, false, "forged").WaitTimeout(5 * time.Second)
	c2.Publish("devices/esp32-0002/events", 1, false, "mine").WaitTimeout(5 * time.Second)
	if m := got.next(t, 5*time.Second); m == nil || m.Topic() != "devices/esp32-0002/events" {
		t.Fatalf("device 2's forged message got through or its own was lost (%v)", m)
	}
	st := c2.Subscribe("devices/esp32-0001/#", 1, nil)
	st.WaitTimeout(5 * time.Second)
	if r := st.(interface{ Result() map[string]byte }).Result()["devices/esp32-0001/#"]; r != 0x80 {
		t.Errorf("device 2 subscribing to device 1's topics: SUBACK %#x, want 0x80", r)
	}
	// A forbidden QoS 1 message closes the session (mochi-mqtt's answer
	// for MQTT 3.1.1, which has no negative PUBACK).
	c2.Publish("devices/esp32-0001/events", 1, false, "forged").WaitTimeout(2 * time.Second)
	for deadline := time.Now().Add(5 * time.Second); c2.IsConnectionOpen(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("device 2 is still connected after a forbidden QoS 1 publish")
		}
	}
	if m := got.next(t, 300*time.Millisecond); m != nil {
		t.Fatalf("forged message delivered: %s %s", m.Topic(), m.Payload())
	}

	// Revoke a certificate while the broker runs: the CRL is re-read.
	if _, err := fleet.Revoke(laterCert.SerialNumber.Text(16), "test"); err != nil {
		t.Fatal(err)
	}
	wrongID := dev1
	wrongID.id = "esp32-0002" // device 1's certificate, device 2's client id
	tests := []struct {
		name string
		id   identity
		want string // what the client sees
		why  string // what the broker logs
	}{
		{"certificate from another CA", stranger, "bad certificate", "certificate signed by unknown authority"},
		{"expired certificate", expired, "bad certificate", "expired"},
		{"revoked certificate", later, "bad certificate", "is revoked"},
		{"client id of another device", wrongID, "not Authorized", "client id is not the certificate CN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.id.tls12 = true
			cl, err := connect(addr, roots, tt.id, nil)
			if err == nil {
				cl.Disconnect(0)
				t.Fatal("broker accepted the connection")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("refused with %v, want %q", err, tt.want)
			}
			if !strings.Contains(log.String(), tt.why) {
				t.Fatalf("broker log does not say %q:\n%s", tt.why, log.String())
			}
		})
	}
}
