package broker

import (
	"bytes"
	"context"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mos-tool/mos/cloud/ca"
)

// startMosquitto runs a real mosquitto with the configuration that
// WriteMosquittoConfig makes, on a free loopback port.
func startMosquitto(t *testing.T, c *ca.CA, monitors []string) string {
	t.Helper()
	bin := needTool(t, "mosquitto", "mosquitto")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	dir := t.TempDir()
	f, err := WriteMosquittoConfig(c, dir, MosquittoOptions{Listen: addr, Monitors: monitors, RunAsRoot: os.Geteuid() == 0})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-c", f.Config)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto log:\n%s", log.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		cn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			cn.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto did not listen on %s: %v\n%s", addr, err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type received struct {
	ch chan mqtt.Message
}

func newReceived() *received { return &received{ch: make(chan mqtt.Message, 16)} }

func (r *received) handler(_ mqtt.Client, m mqtt.Message) { r.ch <- m }

// next waits for a message on topic; others are returned as unexpected.
func (r *received) next(t *testing.T, d time.Duration) mqtt.Message {
	t.Helper()
	select {
	case m := <-r.ch:
		return m
	case <-time.After(d):
		return nil
	}
}

// TestMosquittoFleetCA runs the fleet CA against a real mosquitto: a device
// certificate connects and its message reaches a subscriber; another device
// cannot publish on the first one's topic; certificates from another CA,
// expired and revoked ones are refused.
func TestMosquittoFleetCA(t *testing.T) {
	needTool(t, "mosquitto", "mosquitto")
	fleet := newFleet(t)
	dev1, _ := issueIdentity(t, fleet, "esp32-0001", ca.SignOptions{})
	dev2, _ := issueIdentity(t, fleet, "esp32-0002", ca.SignOptions{})
	monitor, _ := issueIdentity(t, fleet, "fleet-monitor", ca.SignOptions{})
	expired, _ := issueIdentity(t, fleet, "esp32-0003", ca.SignOptions{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	revoked, revokedCert := issueIdentity(t, fleet, "esp32-0004", ca.SignOptions{})
	if _, err := fleet.Revoke(revokedCert.SerialNumber.Text(16), "test"); err != nil {
		t.Fatal(err)
	}
	other := newFleet(t)
	stranger, _ := issueIdentity(t, other, "esp32-0001", ca.SignOptions{})

	addr := startMosquitto(t, fleet, []string{"fleet-monitor"})
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
	publish := func(cl mqtt.Client, topic, payload string) {
		t.Helper()
		tok := cl.Publish(topic, 1, false, payload)
		if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
			t.Fatalf("publish %s: %v", topic, tok.Error())
		}
	}

	c1, err := connect(addr, roots, dev1, nil)
	if err != nil {
		t.Fatalf("device 1 with its fleet certificate: %v", err)
	}
	defer c1.Disconnect(100)
	publish(c1, "devices/esp32-0001/events", `{"hello":"esp32-0001"}`)
	m := got.next(t, 5*time.Second)
	if m == nil || m.Topic() != "devices/esp32-0001/events" || string(m.Payload()) != `{"hello":"esp32-0001"}` {
		t.Fatalf("subscriber did not get device 1's hello (got %v)", m)
	}

	c2, err := connect(addr, roots, dev2, nil)
	if err != nil {
		t.Fatalf("device 2: %v", err)
	}
	defer c2.Disconnect(100)
	// Device 2 tries device 1's topic, then its own. Messages of one
	// session are delivered in order, so once its own arrives the forged
	// one would have arrived before it: it was dropped by the ACL.
	publish(c2, "devices/esp32-0001/events", `{"forged":true}`)
	publish(c2, "devices/esp32-0002/events", `{"hello":"esp32-0002"}`)
	m = got.next(t, 5*time.Second)
	if m == nil {
		t.Fatal("subscriber got nothing from device 2")
	}
	if m.Topic() != "devices/esp32-0002/events" {
		t.Fatalf("device 2 published on %s (payload %s): the ACL let it through", m.Topic(), m.Payload())
	}
	// Nor may device 2 read device 1's topics. mosquitto 2.0 grants the
	// subscription (MQTT 3.1.1 SUBACK) and applies the read ACL at
	// delivery, so check delivery: the broker routes one message to all
	// subscribers together, so once the monitor has it, device 2 would too.
	spy := newReceived()
	st := c2.Subscribe("devices/esp32-0001/#", 1, spy.handler)
	if !st.WaitTimeout(5*time.Second) || st.Error() != nil {
		t.Fatalf("subscribe: %v", st.Error())
	}
	publish(c1, "devices/esp32-0001/events", "private")
	if m := got.next(t, 5*time.Second); m == nil || string(m.Payload()) != "private" {
		t.Fatalf("monitor did not get device 1's message (%v)", m)
	}
	if m := spy.next(t, 500*time.Millisecond); m != nil {
		t.Fatalf("device 2 read device 1's message on %s", m.Topic())
	}

	refused := []struct {
		name string
		id   identity
		want string // the TLS alert mosquitto (OpenSSL) sends
	}{
		{"certificate from another CA", stranger, "unknown certificate authority"},
		{"expired certificate", expired, "expired certificate"},
		{"revoked certificate", revoked, "revoked certificate"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			tt.id.tls12 = true
			cl, err := connect(addr, roots, tt.id, nil)
			if err == nil {
				cl.Disconnect(0)
				t.Fatalf("%s: broker accepted the connection", tt.name)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("refused, but not for the expected reason %q: %v", tt.want, err)
			}
		})
	}
	// The valid device is still connected: the refusals were about the
	// certificates, not a broker that stopped.
	publish(c1, "devices/esp32-0001/telemetry", "1")
	if m := got.next(t, 5*time.Second); m == nil || m.Topic() != "devices/esp32-0001/telemetry" {
		t.Fatalf("after the refusals, device 1's message did not arrive (%v)", m)
	}
}

func TestWriteMosquittoConfigContents(t *testing.T) {
	fleet := newFleet(t)
	if err := fleet.Unlock(testPass); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "mq")
	f, err := WriteMosquittoConfig(fleet, dir, MosquittoOptions{Listen: "127.0.0.1:8883"})
	if err != nil {
		t.Fatal(err)
	}
	conf, _ := os.ReadFile(f.Config)
	acl, _ := os.ReadFile(f.ACL)
	for _, want := range []string{"listener 8883 127.0.0.1", "require_certificate true", "use_identity_as_username true", "crlfile " + f.CRLFile, "acl_file " + f.ACL} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config lacks %q:\n%s", want, conf)
		}
	}
	if !strings.Contains(string(acl), "pattern readwrite devices/%u/#") {
		t.Errorf("acl lacks the per-device pattern:\n%s", acl)
	}
	st, _ := os.Stat(f.KeyFile)
	if st.Mode().Perm() != 0o600 {
		t.Errorf("server key mode %v", st.Mode().Perm())
	}
	if _, err := WriteMosquittoConfig(fleet, dir, MosquittoOptions{Listen: "0.0.0.0:8883"}); err == nil {
		t.Error("listening on all addresses without host names was accepted")
	}
}
