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
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mos-tool/mos/cloud/broker"
	"github.com/mos-tool/mos/cloud/ca"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/atca"
)

// e2ePass is the fleet CA's passphrase in the end-to-end tests.
const e2ePass = "fleet pass"

// mosquittoFleet is a real mosquitto trusting a fresh fleet CA.
type mosquittoFleet struct {
	fleet   *ca.CA
	caDir   string        // the fleet CA's directory
	confDir string        // mosquitto's generated config, CA chain and CRL
	addr    string        // mutual-TLS listener, 127.0.0.1:PORT
	log     *lockedBuffer // mosquitto's output (lockedBuffer: broker_test.go)

	mu  sync.Mutex
	got [][]byte // topic and payload of every message the subscriber received
}

// received returns every message the subscriber received, as
// "topic payload".
func (m *mosquittoFleet) received() [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([][]byte(nil), m.got...)
}

// startMosquitto makes a fleet CA, writes a mosquitto config for it
// (require_certificate, use_identity_as_username, per-device ACL, CRL; a
// "monitor" identity may read every device topic), starts mosquitto on a
// free loopback port and stops it when the test ends. Without mosquitto
// the test skips, or fails in CI.
func startMosquitto(t *testing.T) *mosquittoFleet {
	t.Helper()
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("mosquitto is not installed (Debian package mosquitto; .ci/run installs it)")
		}
		t.Skip("mosquitto is not installed (Debian package mosquitto)")
	}
	m := &mosquittoFleet{caDir: t.TempDir(), confDir: t.TempDir(), log: &lockedBuffer{}}
	if m.fleet, err = ca.Init(m.caDir, ca.InitOptions{Name: "e2e fleet"}, []byte(e2ePass)); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.addr = l.Addr().String()
	l.Close()
	f, err := broker.WriteMosquittoConfig(m.fleet, m.confDir, broker.MosquittoOptions{Listen: m.addr,
		Monitors: []string{"monitor"}, RunAsRoot: os.Geteuid() == 0})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "-c", f.Config)
	cmd.Stdout, cmd.Stderr = m.log, m.log
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		cmd.Wait()
		if t.Failed() {
			t.Logf("mosquitto:\n%s", m.log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", m.addr); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("mosquitto did not start")
		}
	}
	return m
}

// subscribe connects a subscriber with a "monitor" certificate of the
// fleet and returns what it receives on devices/#.
func (m *mosquittoFleet) subscribe(t *testing.T) <-chan mqtt.Message {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "monitor"}}, k)
	csr, _ := x509.ParseCertificateRequest(der)
	mc, err := m.fleet.Sign(csr, ca.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(m.fleet.Root)
	msgs := make(chan mqtt.Message, 64)
	sub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://" + m.addr).SetClientID("monitor").
		SetTLSConfig(&tls.Config{RootCAs: roots, ServerName: "127.0.0.1",
			Certificates: []tls.Certificate{{Certificate: [][]byte{mc.Raw, m.fleet.Inter.Raw}, PrivateKey: k}}}).
		SetDefaultPublishHandler(func(_ mqtt.Client, msg mqtt.Message) {
			m.mu.Lock()
			m.got = append(m.got, append([]byte(msg.Topic()+" "), msg.Payload()...))
			m.mu.Unlock()
			select {
			case msgs <- msg:
			default: // the test stopped reading
			}
		}))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscriber: %v", tok.Error())
	}
	t.Cleanup(func() { sub.Disconnect(100) })
	if tok := sub.Subscribe("devices/#", 1, nil); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	return msgs
}

// connections counts mosquitto's "New client connected ... u'ID'" lines
// for a certificate identity (use_identity_as_username).
func (m *mosquittoFleet) connections(id string) int {
	n := 0
	for _, line := range strings.Split(m.log.String(), "\n") {
		if strings.Contains(line, "New client connected") && strings.Contains(line, "u'"+id+"'") {
			n++
		}
	}
	return n
}

// waitHello waits for the device's hello on devices/<id>/events; other
// messages (telemetry) are passed over.
func waitHello(t *testing.T, msgs <-chan mqtt.Message, id string, within time.Duration) {
	t.Helper()
	timeout := time.After(within)
	for {
		select {
		case m := <-msgs:
			var ev struct {
				Event string `json:"event"`
			}
			if json.Unmarshal(m.Payload(), &ev) == nil && ev.Event == "hello" {
				if m.Topic() != "devices/"+id+"/events" {
					t.Fatalf("hello on %s, want devices/%s/events", m.Topic(), id)
				}
				return
			}
		case <-timeout:
			t.Fatalf("no hello from the device on devices/%s/events within %s", id, within)
		}
	}
}

// TestProvisionCloudMQTTMosquitto: a virtual device provisioned by
// `mos provision --cloud mqtt` connects to a real mosquitto with its own
// certificate (key made on the device) and its hello reaches a subscriber;
// a second run finds it registered.
func TestProvisionCloudMQTTMosquitto(t *testing.T) {
	m := startMosquitto(t)
	msgs := m.subscribe(t)

	id := t.Name()
	url := "sim://esp32?fast=1&id=" + id
	defer func() {
		if d := sim.Shared(id); d != nil {
			d.Close()
		}
	}()
	env := map[string]string{"MOS_CA_PASSPHRASE": e2ePass}
	args := []string{"--port", url, "provision", "--wifi-ssid", "mos-demo-net", "--wifi-pass", "demo-pass-1234",
		"--cloud", "mqtt", "--broker", m.addr, "--ca-dir", m.caDir, "--cloud-wait", "30s", "--json"}
	r := mos{env: env}.run(t, args...)
	if r.code != 0 {
		t.Fatalf("provision --cloud mqtt: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	recs, err := m.fleet.List()
	if err != nil {
		t.Fatal(err)
	}
	devID := recs[len(recs)-1].DeviceID
	select {
	case msg := <-msgs:
		if msg.Topic() != "devices/"+devID+"/events" || len(msg.Payload()) == 0 {
			t.Fatalf("first message %s %q, want the hello on devices/%s/events", msg.Topic(), msg.Payload(), devID)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no hello from the device")
	}
	if !strings.Contains(m.log.String(), "u'"+devID+"'") {
		t.Errorf("mosquitto did not see the device's certificate identity %s:\n%s", devID, m.log.String())
	}

	// The device made its key: no plain private key in the CA directory
	// or in what mos printed.
	for _, plain := range []string{"BEGIN PRIVATE KEY", "BEGIN EC PRIVATE KEY"} {
		if strings.Contains(r.stdout+r.stderr, plain) {
			t.Fatalf("mos printed a private key")
		}
		filepath.Walk(m.caDir, func(p string, fi os.FileInfo, err error) error {
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
	if again, _ := m.fleet.List(); len(again) != len(recs) {
		t.Fatalf("second run issued another certificate (%d -> %d)", len(recs), len(again))
	}
}

// TestProvisionCloudMQTTMosquittoATCA: the same flow with the key in the
// board's ATECC508A. The chip is prepared as a user would (mos config set,
// mos atca), `mos provision --key ATCA:0` registers the device, and its
// hello reaches mosquitto over mutual TLS. The chip signs the CSR and
// every TLS handshake, and its private key appears nowhere the host can
// see: not in anything mos printed, the CA's or mosquitto's files,
// mosquitto's log or the messages received.
func TestProvisionCloudMQTTMosquittoATCA(t *testing.T) {
	m := startMosquitto(t)
	msgs := m.subscribe(t)

	// The demo firmware on a board with no flash-file: the chip's state
	// (its private key) stays in memory, so no file on the host holds it.
	url, dev := demoDevice(t, "&fast=1")
	env := map[string]string{"MOS_CA_PASSPHRASE": e2ePass}
	type ran struct {
		args []string
		outcome
	}
	var seen []ran // every command run and what it printed
	run := func(args ...string) outcome {
		t.Helper()
		r := mos{env: env}.run(t, append([]string{"--port", url}, args...)...)
		seen = append(seen, ran{args, r})
		return r
	}

	// Prepare the chip the way `mos atca --help` tells a user to: the
	// firmware's atca library on, the config zone locked (GenKey needs
	// it), a key made in slot 0, the data zone locked (Sign needs it).
	for _, args := range [][]string{
		{"config", "set", "sys.atca.enable=true", "i2c.enable=true"},
		{"atca", "lock-zone", "config", "--yes"},
		{"atca", "gen-key", "0"},
		{"atca", "lock-zone", "data", "--yes"},
	} {
		if r := run(args...); r.code != 0 {
			t.Fatalf("mos %s: exit %d\n%s%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
		}
	}
	if dev.CryptoChip() == nil {
		t.Fatal("the virtual board has no crypto chip")
	}
	chip := dev.CryptoChip()
	if chip.Path() != "" || !chip.Locked(atca.ZoneConfig) || !chip.Locked(atca.ZoneData) {
		t.Fatalf("chip: state file %q, config locked %v, data locked %v; want in memory, both locked",
			chip.Path(), chip.Locked(atca.ZoneConfig), chip.Locked(atca.ZoneData))
	}
	secret := atca.PrivateScalarForTest(chip, 0)
	rawPub, err := chip.PublicKey(0)
	if secret == nil || err != nil {
		t.Fatalf("no key in slot 0 after mos atca gen-key 0: %v", err)
	}
	chipPub, err := atca.ParsePublicKey(rawPub)
	if err != nil {
		t.Fatal(err)
	}
	signs0 := chip.Signs()

	args := []string{"provision", "--wifi-ssid", "mos-demo-net", "--wifi-pass", "demo-pass-1234",
		"--cloud", "mqtt", "--key", "ATCA:0", "--broker", m.addr, "--ca-dir", m.caDir, "--cloud-wait", "30s", "--json"}
	r := run(args...)
	if r.code != 0 {
		t.Fatalf("provision --cloud mqtt --key ATCA:0: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	recs, err := m.fleet.List()
	if err != nil || len(recs) == 0 {
		t.Fatalf("no certificate recorded by the CA: %v", err)
	}
	rec := recs[len(recs)-1]
	devID := rec.DeviceID
	waitHello(t, msgs, devID, 20*time.Second)

	// The certificate carries the chip's key: mosquitto accepting the
	// device's handshake proves the handshake was signed with it.
	pb, err := os.ReadFile(filepath.Join(m.caDir, rec.File))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pb)
	if blk == nil {
		t.Fatalf("%s is not PEM", rec.File)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !chipPub.Equal(cert.PublicKey) || cert.Subject.CommonName != devID {
		t.Fatalf("the device certificate (CN %s) does not carry the chip's slot 0 key", cert.Subject.CommonName)
	}
	if r := run("config", "get", "mqtt.ssl_key"); r.code != 0 || !strings.Contains(r.stdout, "ATCA:0") {
		t.Fatalf("mqtt.ssl_key: exit %d %q %s, want ATCA:0", r.code, r.stdout, r.stderr)
	}

	// Signing went through the chip: one signature for the CSR and one
	// per TLS handshake (CertificateVerify). The log is read before the
	// counter: every connection it shows was signed before it was logged.
	n1 := m.connections(devID)
	s1 := chip.Signs()
	if n1 < 1 {
		t.Fatalf("mosquitto did not see the device's certificate identity u'%s'", devID)
	}
	if s1-signs0 < 1+n1 {
		t.Fatalf("the chip made %d signatures during registration, want at least %d (the CSR and %d TLS connections)", s1-signs0, 1+n1, n1)
	}

	// Every new connection is signed by the chip again: reboot the device,
	// wait for its next hello and connection.
	for len(msgs) > 0 {
		<-msgs
	}
	if r := run("reboot"); r.code != 0 {
		t.Fatalf("reboot: exit %d %s", r.code, r.stderr)
	}
	waitHello(t, msgs, devID, 20*time.Second)
	n2 := m.connections(devID)
	for deadline := time.Now().Add(5 * time.Second); n2 <= n1 && time.Now().Before(deadline); n2 = m.connections(devID) {
		time.Sleep(20 * time.Millisecond)
	}
	s2 := chip.Signs()
	if n2 <= n1 {
		t.Fatalf("mosquitto logged no new connection of %s after the reboot", devID)
	}
	if s2 <= s1 || s2-signs0 < 1+n2 {
		t.Fatalf("after the reboot: %d signatures for %d connections (before: %d for %d); the chip did not sign the new handshake", s2-signs0, n2, s1-signs0, n1)
	}

	// Second run: the cloud step is skipped, nothing new is issued.
	r = run(args...)
	if r.code != 0 || !strings.Contains(r.stdout, `"step": "cloud"`) || !strings.Contains(r.stdout, "already registered") {
		t.Fatalf("second run: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if again, _ := m.fleet.List(); len(again) != len(recs) {
		t.Fatalf("second run issued another certificate (%d -> %d)", len(recs), len(again))
	}

	// Everything the host saw.
	type seenBytes struct {
		where string
		b     []byte
	}
	var host []seenBytes
	for _, r := range seen {
		cmd := "mos " + strings.Join(r.args, " ")
		host = append(host, seenBytes{cmd + " (stdout)", []byte(r.stdout)}, seenBytes{cmd + " (stderr)", []byte(r.stderr)})
	}
	for _, dir := range []string{m.caDir, m.confDir} {
		err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			host = append(host, seenBytes{p, b})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	host = append(host, seenBytes{"mosquitto's log", []byte(m.log.String())})
	for i, msg := range m.received() {
		host = append(host, seenBytes{fmt.Sprintf("MQTT message %d", i), msg})
	}
	total := 0
	for _, h := range host {
		total += len(h.b)
		if form := findSecret(h.b, secret); form != "" {
			t.Errorf("the chip's private key is in %s (%s)", h.where, form)
		}
	}
	t.Logf("chip signatures %d -> %d -> %d for %d then %d connections; searched %d sources, %d bytes", signs0, s1, s2, n1, n2, len(host), total)
	if len(host) < 10 || total < 4096 {
		t.Fatalf("searched only %d sources, %d bytes: the collection of what the host saw is broken", len(host), total)
	}

	// Control: the search finds the key in every form it could take,
	// planted in the middle of real host bytes.
	for _, c := range secretRenderings(t, secret) {
		planted := append(append(append([]byte(nil), host[0].b...), c.b...), []byte(m.log.String())...)
		if findSecret(planted, secret) == "" {
			t.Errorf("control: the search misses the key written as %s", c.where)
		}
	}
}

// findSecret reports how secret (a private scalar) appears in b: raw,
// hex (either case, also split by spaces, colons or line breaks, as
// hexdumps and `openssl ec -text` write it), base64 (standard or URL
// alphabet, at any byte alignment, so inside a PEM or DER blob or a JSON
// []byte too) or decimal (how a big.Int prints); "" when it does not.
func findSecret(b, secret []byte) string {
	if bytes.Contains(b, secret) {
		return "raw bytes"
	}
	// Text forms are also searched with separators removed.
	squeezed := bytes.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n', ':', '\\':
			return -1
		}
		return r
	}, b)
	h := hex.EncodeToString(secret)
	forms := []struct{ name, s string }{
		{"lower-case hex", h},
		{"upper-case hex", strings.ToUpper(h)},
		{"decimal", new(big.Int).SetBytes(secret).String()},
	}
	// The 40 base64 characters that depend only on the secret, for each
	// of the three positions it can take relative to base64's 3-byte
	// groups.
	for off := range 3 {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding} {
			forms = append(forms, struct{ name, s string }{"base64", enc.EncodeToString(secret[off : off+30])})
		}
	}
	for _, f := range forms {
		if bytes.Contains(b, []byte(f.s)) || bytes.Contains(squeezed, []byte(f.s)) {
			return f.name
		}
	}
	return ""
}

// secretRenderings writes secret in the forms a leak could take.
func secretRenderings(t *testing.T, secret []byte) []struct {
	where string
	b     []byte
} {
	t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), secret)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(map[string][]byte{"key": secret})
	colons := strings.ReplaceAll(fmt.Sprintf("% x", secret), " ", ":")
	out := []struct {
		where string
		b     []byte
	}{
		{"raw bytes", secret},
		{"lower-case hex", []byte(hex.EncodeToString(secret))},
		{"upper-case hex", []byte(strings.ToUpper(hex.EncodeToString(secret)))},
		{"openssl-style hex", []byte("priv:\n    " + colons[:45] + "\n    " + colons[45:] + "\n")},
		{"decimal", []byte(fmt.Sprint(k.D))},
		{"SEC 1 DER", sec1},
		{"SEC 1 PEM", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})},
		{"PKCS #8 PEM", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})},
		{"JSON []byte", js},
	}
	for pre := range 3 {
		buf := append(append(bytes.Repeat([]byte{0xA5}, pre), secret...), 0x5A, 0x5A)
		out = append(out,
			struct {
				where string
				b     []byte
			}{fmt.Sprintf("base64 after %d bytes", pre), []byte(base64.StdEncoding.EncodeToString(buf))},
			struct {
				where string
				b     []byte
			}{fmt.Sprintf("URL base64 after %d bytes", pre), []byte(base64.RawURLEncoding.EncodeToString(buf))})
	}
	return out
}
