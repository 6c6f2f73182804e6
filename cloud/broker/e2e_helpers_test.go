package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mos-tool/mos/cloud/ca"
)

var testPass = []byte("fleet passphrase")

// identity is a client key and certificate for a test MQTT client.
type identity struct {
	cert tls.Certificate
	id   string
	// tls12 caps the client at TLS 1.2, as Mongoose OS devices (mbedTLS)
	// are; there the server checks the client certificate inside the
	// handshake, so a refusal always arrives as a TLS alert. With TLS 1.3
	// the alert races the client's first write and may be lost to a reset.
	tls12 bool
}

func newFleet(t *testing.T) *ca.CA {
	t.Helper()
	c, err := ca.Init(t.TempDir(), ca.InitOptions{Name: "test fleet"}, testPass)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// issueIdentity makes a key and has the CA sign its CSR, as a device does.
func issueIdentity(t *testing.T, c *ca.CA, id string, o ca.SignOptions) (identity, *x509.Certificate) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}}, k)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	cert, err := c.Sign(csr, o)
	if err != nil {
		t.Fatal(err)
	}
	return identity{id: id, cert: tls.Certificate{Certificate: [][]byte{cert.Raw, c.Inter.Raw}, PrivateKey: k, Leaf: cert}}, cert
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// needTool finds a program the test needs; in CI its absence fails the test.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed (Debian package %s; .ci/run installs it)", name, pkg)
	}
	t.Skipf("%s is not installed (Debian package %s)", name, pkg)
	return ""
}

// connect opens an MQTT 3.1.1 session over mutual TLS; the server is
// checked against roots.
func connect(addr string, roots *x509.CertPool, id identity, onMsg mqtt.MessageHandler) (mqtt.Client, error) {
	tc := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{id.cert}, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if id.tls12 {
		tc.MaxVersion = tls.VersionTLS12
	}
	o := mqtt.NewClientOptions().
		AddBroker("ssl://" + addr).
		SetClientID(id.id).
		SetTLSConfig(tc).
		SetConnectTimeout(5 * time.Second).
		SetAutoReconnect(false).
		SetConnectRetry(false)
	if onMsg != nil {
		o.SetDefaultPublishHandler(onMsg)
	}
	cl := mqtt.NewClient(o)
	tok := cl.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, fmt.Errorf("connect to %s as %s: timed out", addr, id.id)
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	// With TLS 1.3 the server checks the client certificate after the
	// client's handshake is done; a refused certificate shows up as the
	// connection closing right after CONNACK is awaited. Paho reports that
	// as a connect error, but make sure with a round trip.
	st := cl.Subscribe("devices/"+id.id+"/probe", 1, nil)
	if !st.WaitTimeout(5*time.Second) || st.Error() != nil || !cl.IsConnected() {
		cl.Disconnect(0)
		return nil, fmt.Errorf("connection as %s closed by the broker (%v)", id.id, st.Error())
	}
	return cl, nil
}
