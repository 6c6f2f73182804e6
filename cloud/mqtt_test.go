package cloud

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/cloud/broker"
	"github.com/mos-tool/mos/cloud/ca"
)

var testPass = []byte("fleet passphrase")

type hello struct {
	mu   sync.Mutex
	msgs []string
}

func (h *hello) add(id, topic string, p []byte) {
	h.mu.Lock()
	h.msgs = append(h.msgs, id+" "+topic+" "+string(p))
	h.mu.Unlock()
}

// wait waits for a message: the broker reports it after the publisher's
// acknowledgement, so a moment after.
func (h *hello) wait(s string, d time.Duration) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if h.has(s) {
			return true
		}
	}
	return false
}

func (h *hello) has(s string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		if m == s {
			return true
		}
	}
	return false
}

// fleetBroker starts the embedded broker for a new fleet CA.
func fleetBroker(t testing.TB) (*ca.CA, string, *hello) {
	t.Helper()
	c, err := ca.Init(t.TempDir(), ca.InitOptions{Name: "test fleet"}, testPass)
	if err != nil {
		t.Fatal(err)
	}
	srv, _, err := broker.ServerCertificate(c, t.TempDir(), []string{"127.0.0.1"}, func() error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	h := &hello{}
	b, err := broker.Start(broker.Options{Listen: "127.0.0.1:0", CA: c, Server: srv, OnMessage: h.add})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return c, b.Addr().String(), h
}

func TestRegisterMQTT(t *testing.T) {
	tests := []struct {
		name        string
		key         KeyOptions
		wantRef     string
		keyOnDevice bool
	}{
		{"firmware key", KeyOptions{}, DefaultKeyRef, true},
		{"crypto chip", KeyOptions{Ref: "ATCA:0"}, "ATCA:0", true},
		{"host key", KeyOptions{HostKey: true}, HostKeyRef, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fleet, addr, got := fleetBroker(t)
			dev := newFakeDevice("esp32-cafe01")
			defer dev.close()
			var log []string
			o := MQTTOptions{Broker: addr, CA: fleet, Key: tt.key, Wait: 10 * time.Second,
				Status: func(s string) { log = append(log, s) }}
			res, err := RegisterMQTT(context.Background(), dev, o)
			if err != nil {
				t.Fatalf("register: %v (log %q)", err, log)
			}
			if !res.Connection.Proven || res.KeyRef != tt.wantRef || res.KeyOnDevice != tt.keyOnDevice {
				t.Fatalf("result %+v", res)
			}
			if !got.wait(`esp32-cafe01 devices/esp32-cafe01/events {"hello":"esp32-cafe01"}`, 5*time.Second) {
				t.Fatalf("broker did not receive the device's hello: %q", got.msgs)
			}
			if dev.config["mqtt.ssl_key"] != tt.wantRef || dev.config["mqtt.server"] != addr {
				t.Fatalf("device config %v", dev.config)
			}
			// The private key left the device only in host-key mode, and
			// then the log says so.
			for name, data := range dev.files {
				want := !tt.keyOnDevice && name == HostKeyRef
				if strings.Contains(string(data), "PRIVATE KEY") != want {
					t.Errorf("file %s on the device: private key present = %v, want %v", name, !want, want)
				}
			}
			warned := strings.Contains(strings.Join(log, "\n"), "on this computer")
			if warned != !tt.keyOnDevice {
				t.Errorf("host-key warning shown = %v: %q", warned, log)
			}
			if tt.keyOnDevice && dev.signs == 0 {
				t.Error("the CSR was not signed by the device")
			}
			// The device's private key appears nowhere on the host: not in
			// the result, the log, the CA directory or the files sent.
			if k := dev.keys[tt.wantRef]; k != nil {
				if leak := findKey(t, k, res, log, fleet.Dir, dev.files); leak != "" {
					t.Fatalf("device private key found in %s", leak)
				}
			} else {
				// The host-made key is in the file sent, and the search
				// finds it there (so it would find a leak elsewhere).
				k, err := parseKey(dev.files[HostKeyRef])
				if err != nil {
					t.Fatal(err)
				}
				if leak := findKey(t, k, res, log, fleet.Dir, dev.files); leak != "device file "+HostKeyRef {
					t.Fatalf("host key search found %q", leak)
				}
			}
			// The CA directory never holds the device key either.
			filepath.Walk(fleet.Dir, func(p string, fi os.FileInfo, err error) error {
				if err == nil && !fi.IsDir() {
					b, _ := os.ReadFile(p)
					if strings.Contains(string(b), "BEGIN EC PRIVATE KEY") {
						t.Errorf("%s holds a plain private key", p)
					}
				}
				return nil
			})

			// A second run finds it done: no signature, no file, no setting.
			signs, puts, sets, reboots := dev.signs, len(dev.puts), dev.sets, dev.reboots
			if tt.key.HostKey {
				return // a host key is made anew each time, by request
			}
			locked, _ := ca.Open(fleet.Dir) // no passphrase needed for a re-run
			o.CA = locked
			res2, err := RegisterMQTT(context.Background(), dev, o)
			if err != nil {
				t.Fatalf("second run: %v", err)
			}
			if res2.Serial != res.Serial || res2.Steps[0].Status != "skipped" || !res2.Connection.Proven {
				t.Fatalf("second run result %+v", res2)
			}
			if dev.signs != signs || len(dev.puts) != puts || dev.sets != sets || dev.reboots != reboots {
				t.Fatalf("second run changed the device: signs %d->%d puts %d->%d sets %d->%d reboots %d->%d",
					signs, dev.signs, puts, len(dev.puts), sets, dev.sets, reboots, dev.reboots)
			}
		})
	}
}

func TestRegisterMQTTRotateAndRevoked(t *testing.T) {
	fleet, addr, _ := fleetBroker(t)
	dev := newFakeDevice("esp32-cafe02")
	defer dev.close()
	o := MQTTOptions{Broker: addr, CA: fleet, Wait: 10 * time.Second}
	first, err := RegisterMQTT(context.Background(), dev, o)
	if err != nil {
		t.Fatal(err)
	}
	o.Rotate = true
	second, err := RegisterMQTT(context.Background(), dev, o)
	if err != nil {
		t.Fatal(err)
	}
	if second.Serial == first.Serial || !second.Connection.Proven {
		t.Fatalf("rotate: serial %s -> %s, %+v", first.Serial, second.Serial, second.Connection)
	}
	// A revoked certificate on the device is not "already registered".
	if _, err := fleet.Revoke(second.Serial, "test"); err != nil {
		t.Fatal(err)
	}
	o.Rotate = false
	third, err := RegisterMQTT(context.Background(), dev, o)
	if err != nil {
		t.Fatal(err)
	}
	if third.Serial == second.Serial || third.Steps[len(third.Steps)-1].Status != "done" {
		t.Fatalf("revoked certificate kept: %+v", third)
	}
}

func TestRegisterMQTTWait(t *testing.T) {
	fleet, addr, _ := fleetBroker(t)
	t.Run("wait 0 is unproven", func(t *testing.T) {
		dev := newFakeDevice("esp32-cafe03")
		defer dev.close()
		res, err := RegisterMQTT(context.Background(), dev, MQTTOptions{Broker: addr, CA: fleet, Wait: 0})
		if err != nil || res.Connection.Proven {
			t.Fatalf("wait 0: %v, %+v", err, res.Connection)
		}
	})
	t.Run("no broker there", func(t *testing.T) {
		dev := newFakeDevice("esp32-cafe04")
		defer dev.close()
		res, err := RegisterMQTT(context.Background(), dev, MQTTOptions{Broker: "127.0.0.1:1", CA: fleet, Wait: time.Second})
		if !errors.Is(err, ErrNotConnected) || res.Connection.Proven || res.Connection.LastError == "" {
			t.Fatalf("unreachable broker: %v, %+v", err, res.Connection)
		}
	})
	t.Run("device id unusable as CN", func(t *testing.T) {
		dev := newFakeDevice("esp32/evil")
		if _, err := RegisterMQTT(context.Background(), dev, MQTTOptions{Broker: addr, CA: fleet}); err == nil {
			t.Fatal("accepted a device id with '/'")
		}
	})
}

// findKey looks for a private key's scalar (hex, base64 of its DER forms)
// in everything registration produced on the host.
func findKey(t *testing.T, k *ecdsa.PrivateKey, res any, log []string, dir string, files map[string][]byte) string {
	t.Helper()
	d := k.D.FillBytes(make([]byte, 32))
	sec1, _ := x509.MarshalECPrivateKey(k)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(k)
	needles := []string{hex.EncodeToString(d), base64.StdEncoding.EncodeToString(d), string(d),
		base64.StdEncoding.EncodeToString(sec1)[:40], base64.StdEncoding.EncodeToString(pkcs8)[:40]}
	hay := map[string]string{}
	js, _ := json.Marshal(res)
	hay["result"] = string(js)
	hay["log"] = strings.Join(log, "\n")
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			hay[p] = string(b)
		}
		return nil
	})
	for n, b := range files {
		hay["device file "+n] = string(b)
	}
	for where, h := range hay {
		for _, n := range needles {
			if strings.Contains(h, n) {
				return where
			}
		}
	}
	return ""
}
