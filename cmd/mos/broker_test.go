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
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mos-tool/mos/cloud/ca"
)

// lockedBuffer is written by the command's goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestBrokerCommand runs `mos broker` in-process: a device certificate from
// `mos ca` connects and its message is printed; the command stops with its
// context.
func TestBrokerCommand(t *testing.T) {
	dir := t.TempDir()
	const pass = "broker pass"
	fleet, err := ca.Init(dir, ca.InitOptions{}, []byte(pass))
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "esp32-0b0b"}}, k)
	csr, _ := x509.ParseCertificateRequest(der)
	cert, err := fleet.Sign(csr, ca.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()

	var out, errb lockedBuffer
	a := newApp(&out, &errb)
	a.getenv = func(k string) string { return map[string]string{"MOS_CA_PASSPHRASE": pass}[k] }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() { done <- execute(ctx, a, []string{"broker", "--ca-dir", dir, "--listen", addr}) }()
	defer func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("broker exit %d: %s", code, errb.String())
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker did not listen: %s", errb.String())
		}
	}
	if st, err := os.Stat(filepath.Join(dir, "broker", "server.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("broker key: %v %v", err, st)
	}
	roots := x509.NewCertPool()
	roots.AddCert(fleet.Root)
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://" + addr).SetClientID("esp32-0b0b").
		SetTLSConfig(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1",
			Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: k}}}))
	if tok := cl.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v\n%s", tok.Error(), errb.String())
	}
	defer cl.Disconnect(100)
	if tok := cl.Publish("devices/esp32-0b0b/events", 1, false, `{"hello":1}`); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
	want := `esp32-0b0b devices/esp32-0b0b/events {"hello":1}`
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(out.String(), want); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("stdout lacks %q:\n%s", want, out.String())
		}
	}
}
