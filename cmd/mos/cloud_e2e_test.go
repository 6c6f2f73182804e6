package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mos-tool/mos/cloud/broker"
	"github.com/mos-tool/mos/cloud/ca"
	"github.com/mos-tool/mos/sim"
)

// TestProvisionCloudMQTTMosquitto: a virtual device provisioned by
// `mos provision --cloud mqtt` connects to a real mosquitto with its own
// certificate (key made on the device) and its hello reaches a subscriber;
// a second run finds it registered.
func TestProvisionCloudMQTTMosquitto(t *testing.T) {

	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
		}
		t.Skip("mosquitto is not installed (Debian package mosquitto)")
	}
	const pass = "fleet pass"
	caDir := t.TempDir()
	fleet, err := ca.Init(caDir, ca.InitOptions{Name: "e2e fleet"}, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	f, err := broker.WriteMosquittoConfig(fleet, t.TempDir(), broker.MosquittoOptions{Listen: addr,
		Monitors: []string{"monitor"}, RunAsRoot: os.Geteuid() == 0})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-c", f.Config)
	var mlog bytes.Buffer
	cmd.Stdout, cmd.Stderr = &mlog, &mlog
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto:\n%s", mlog.String())
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("mosquitto did not start")
		}
	}

	// The subscriber, with a monitor certificate of the same fleet.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "monitor"}}, k)
	csr, _ := x509.ParseCertificateRequest(der)
	mc, err := fleet.Sign(csr, ca.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(fleet.Root)
	msgs := make(chan mqtt.Message, 16)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://" + addr).SetClientID("monitor").
		SetTLSConfig(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1",
			Certificates: []tls.Certificate{{Certificate: [][]byte{mc.Raw, fleet.Inter.Raw}, PrivateKey: k}}}).
		SetDefaultPublishHandler(func(_ mqtt.Client, m mqtt.Message) { msgs <- m }))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe("devices/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	id := t.Name()
	url := "sim://esp32?fast=1&id=" + id
	defer func() {
		if d := sim.Shared(id); d != nil {
			d.Close()
		}
	}()
	env := map[string]string{"MOS_CA_PASSPHRASE": pass}
	args := []string{"--port", url, "provision", "--wifi-ssid", "mos-demo-net", "--wifi-pass", "demo-pass-1234",
		"--cloud", "mqtt", "--broker", addr, "--ca-dir", caDir, "--cloud-wait", "30s", "--json"}
	r := mos{env: env}.run(t, args...)
	if r.code != 0 {
		t.Fatalf("provision --cloud mqtt: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	recs, err := fleet.List()
	if err != nil {
		t.Fatal(err)
	}
	devID := recs[len(recs)-1].DeviceID
	select {
	case m := <-msgs:
		if m.Topic() != "devices/"+devID+"/events" || len(m.Payload()) == 0 {
			t.Fatalf("first message %s %q, want the hello on devices/%s/events", m.Topic(), m.Payload(), devID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no hello from the device")
	}
	if !strings.Contains(mlog.String(), "u'"+devID+"'") {
		t.Errorf("mosquitto did not see the device's certificate identity %s:\n%s", devID, mlog.String())
	}

	// The device made its key: no plain private key in the CA directory
	// or in what mos printed.
	for _, plain := range []string{"BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY"} {
		if strings.Contains(r.stdout+r.stderr, plain) {
			t.Fatalf("mos printed a private key")
		}
		filepath.Walk(caDir, func(p string, fi os.FileInfo, err error) error {
			if b, _ := os.ReadFile(p); err == nil && !fi.IsDir() && strings.Contains(string(b), plain) {
				t.Errorf("%s holds a plain private key", p)
			}
			return nil
		})
	}

	// Second run: the cloud step is skipped, nothing new is issued.
	r = mos{env: env}.run(t, args...)
	if r.code != 0 || !strings.Contains(r.stdout, `"step": "cloud"`) || !strings.Contains(r.stdout, "already registered") {
		t.Fatalf("second run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if again, _ := fleet.List(); len(again) != len(recs) {
		t.Fatalf("second run issued another certificate (%d -> %d)", len(recs), len(again))
	}
}
