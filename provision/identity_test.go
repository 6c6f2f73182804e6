package provision_test

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
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mos-tool/mos/port"
	"github.com/mos-tool/mos/provision"
	"github.com/mos-tool/mos/sim"
)

// recordingPort keeps every byte the host receives from the device.
type recordingPort struct {
	port.Port
	mu  sync.Mutex
	got bytes.Buffer
}

func (p *recordingPort) Read(b []byte) (int, error) {
	n, err := p.Port.Read(b)
	p.mu.Lock()
	p.got.Write(b[:n])
	p.mu.Unlock()
	return n, err
}

func (p *recordingPort) received() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.got.Bytes())
}

// connectRecording connects through a recordingPort.
func connectRecording(t *testing.T, url string) (*provision.Client, *recordingPort) {
	t.Helper()
	p, err := port.Open(t.Context(), url, 115200)
	if err != nil {
		t.Fatal(err)
	}
	rp := &recordingPort{Port: p}
	c, err := provision.Connect(t.Context(), rp, provision.Options{})
	if err != nil {
		p.Close()
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(); p.Close() })
	return c, rp
}

// enableATCA turns the atca library on (it needs I2C), as mos's
// aws-iot-setup --use-atca does, and reboots.
func enableATCA(t *testing.T, c *provision.Client) {
	t.Helper()
	_, err := c.ConfigSet(t.Context(), map[string]any{"sys.atca.enable": true, "i2c.enable": true}, provision.SetOptions{Save: true, Reboot: true})
	if err != nil {
		t.Fatal(err)
	}
}

func rpcCode(err error) int {
	var re *provision.RPCError
	if errors.As(err, &re) {
		return re.Code
	}
	return 0
}

// TestATCAOverRPC walks the chip's life over the demo's ATCA.* methods:
// absent until enabled, keys refused before the config lock, signing
// refused before the data lock, then a CSR signed in the chip.
func TestATCAOverRPC(t *testing.T) {
	url, dev := bootDemo(t, withFlashFile(t))
	c, rp := connectRecording(t, url)
	ctx := t.Context()
	if _, _, _, err := c.ATCAConfig(ctx); rpcCode(err) != 404 {
		t.Fatalf("ATCA.GetConfig with sys.atca.enable off: %v, want 404 (the library registers nothing)", err)
	}
	enableATCA(t, c)
	cfg, cl, dl, err := c.ATCAConfig(ctx)
	if err != nil || len(cfg) != 128 || cl || dl {
		t.Fatalf("ATCAConfig: %d bytes, locked %v %v, %v", len(cfg), cl, dl, err)
	}
	if err := c.Call(ctx, "ATCA.SetConfig", map[string]any{"config": cfg[:64]}, nil); rpcCode(err) != 400 || !strings.Contains(err.Error(), "Expected 128 bytes, got 64") {
		t.Fatalf("short SetConfig: %v", err)
	}
	if err := c.Call(ctx, "ATCA.LockZone", map[string]any{"zone": 2}, nil); rpcCode(err) != 403 || !strings.Contains(err.Error(), "Invalid zone") {
		t.Fatalf("LockZone 2: %v", err)
	}
	if _, err := c.GenerateDeviceKey(ctx, "ATCA:0"); rpcCode(err) != 500 || !strings.Contains(err.Error(), ": 0xf4") {
		t.Fatalf("GenKey before the config lock: %v, want 500 ..: 0xf4 (execution error)", err)
	}
	if err := c.ATCASetConfig(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if err := c.ATCALockZone(ctx, provision.ATCAZoneConfig); err != nil {
		t.Fatal(err)
	}
	if err := c.ATCASetConfig(ctx, cfg); rpcCode(err) != 500 {
		t.Fatalf("SetConfig after the lock: %v", err)
	}
	pub, err := c.GenerateDeviceKey(ctx, "ATCA:0")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := c.DeviceSigner(ctx, "ATCA:0")
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "esp32-test"}}
	if _, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer); rpcCode(err) != 500 {
		t.Fatalf("signing before the data lock: %v, want a chip refusal", err)
	}
	if err := c.ATCALockZone(ctx, provision.ATCAZoneData); err != nil {
		t.Fatal(err)
	}
	_, cl, dl, _ = c.ATCAConfig(ctx)
	if !cl || !dl {
		t.Fatalf("after both locks: locked %v %v", cl, dl)
	}
	before := dev.CryptoChip().Signs()
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signature: %v", err)
	}
	if !pub.Equal(csr.PublicKey) || csr.Subject.CommonName != "esp32-test" {
		t.Fatal("the CSR does not carry the chip's key")
	}
	if n := dev.CryptoChip().Signs() - before; n != 1 {
		t.Fatalf("the chip made %d signatures for one CSR", n)
	}
	// the key is the chip's: it survives a reboot
	if err := c.Reboot(ctx); err != nil {
		t.Fatal(err)
	}
	again, err := c.DevicePublicKey(ctx, "ATCA:0")
	if err != nil || !again.Equal(pub) {
		t.Fatalf("key after reboot: %v", err)
	}
	assertKeyNeverSent(t, rp.received(), chipScalar(t, dev))
}

// withFlashFile: fast mode, the flash (and so the crypto chip) kept in a
// file of the test's own.
func withFlashFile(t *testing.T) string {
	return "&fast=1&flash-file=" + filepath.Join(t.TempDir(), "board.flash")
}

// chipScalar reads slot 0's private key from the chip: tests only, by
// reopening the chip's EEPROM file; no command of the chip returns it.
func chipScalar(t *testing.T, dev *sim.Device) []byte {
	t.Helper()
	path := dev.CryptoChip().Path()
	if path == "" {
		t.Fatal("the device keeps its chip in memory only; give it a flash-file")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		Keys map[int][]byte `json:"keys"`
	}
	if err := json.Unmarshal(b, &st); err != nil || len(st.Keys[0]) != 32 {
		t.Fatalf("chip state: %v", err)
	}
	return st.Keys[0]
}

var base64Run = regexp.MustCompile(`[A-Za-z0-9+/]{16,}={0,2}`)

// assertKeyNeverSent searches every byte the host received (RPC replies
// and console log alike) for the private scalar (see keyFound).
func assertKeyNeverSent(t *testing.T, got, scalar []byte) {
	t.Helper()
	if len(got) < 1000 {
		t.Fatalf("only %d bytes recorded: the search would prove nothing", len(got))
	}
	decoded := 0
	if where := keyFound(got, scalar, 3, &decoded); where != "" {
		t.Fatalf("the private key was sent (%s)", where)
	}
	if decoded == 0 {
		t.Fatal("no base64 was decoded: the search did not look at the replies")
	}
}

// keyFound looks for scalar in data raw, in hex, and inside base64 text
// at any alignment, decoding nested base64 (a PEM file sent as base64)
// up to depth levels. It says how it found it, or "".
func keyFound(data, scalar []byte, depth int, decoded *int) string {
	if bytes.Contains(data, scalar) {
		return "raw"
	}
	if bytes.Contains(bytes.ToLower(data), []byte(hex.EncodeToString(scalar))) {
		return "hex"
	}
	if depth == 0 {
		return ""
	}
	// PEM and JSON break base64 into lines or escape slashes
	flat := []byte(strings.NewReplacer(`\n`, "", `\/`, "/", "\n", "", "\r", "").Replace(string(data)))
	for _, run := range base64Run.FindAll(flat, -1) {
		for shift := range 4 { // the run may start mid-quantum
			if shift >= len(run) {
				break
			}
			s := string(run[shift:])
			s = strings.TrimRight(s, "=")
			if len(s)%4 == 1 {
				s = s[:len(s)-1] // a lone sextet decodes to nothing
			}
			d, err := base64.RawStdEncoding.DecodeString(s)
			if err != nil {
				continue
			}
			*decoded++
			if w := keyFound(d, scalar, depth-1, decoded); w != "" {
				return "base64 > " + w
			}
		}
	}
	return ""
}

// TestKeySearchFindsKeys: the search used above finds a key sent as
// FS.Get would send a PEM key file (base64 of PEM of DER), so its silence
// means something.
func TestKeySearchFindsKeys(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(k)
	pemData := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	scalar := k.D.FillBytes(make([]byte, 32))
	for _, prefix := range []string{"", "x", "xy", "xyz"} {
		reply := []byte(`{"id":1,"result":{"data": "` + prefix + base64.StdEncoding.EncodeToString(pemData) + `", "left": 0}}`)
		n := 0
		if keyFound(reply, scalar, 3, &n) == "" {
			t.Fatalf("a key file sent by FS.Get (prefix %q) was not found", prefix)
		}
	}
	n := 0
	if keyFound([]byte(`{"result":"`+base64.StdEncoding.EncodeToString(scalar)+`"}`), scalar, 3, &n) == "" {
		t.Fatal("a base64 scalar was not found")
	}
}

// TestSoftwareKeyNeverLeaves: the firmware makes its own key in its file
// store; a CSR signed with it verifies; FS.Get refuses the key file under
// any name, and no byte the host received carries the key.
func TestSoftwareKeyNeverLeaves(t *testing.T) {
	url, dev := bootDemo(t, "&fast=1")
	c, rp := connectRecording(t, url)
	ctx := t.Context()
	pub, err := c.GenerateDeviceKey(ctx, "device.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := c.DeviceSigner(ctx, "device.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev1"}}, signer)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	if csr == nil || csr.CheckSignature() != nil || !pub.Equal(csr.PublicKey) {
		t.Fatal("the CSR is not signed by the device key")
	}
	if _, err := c.Get(ctx, "device.key.pem", nil); rpcCode(err) != 403 {
		assertKeyNeverSent(t, rp.received(), fileKeyScalar(t, dev))
		t.Fatalf("FS.Get of the key file: %v, want 403", err)
	}
	if err := c.Call(ctx, "FS.Rename", map[string]any{"src": "device.key.pem", "dst": "notes.txt"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "notes.txt", nil); rpcCode(err) != 403 {
		t.Fatalf("FS.Get of the renamed key file: %v, want 403", err)
	}
	if _, err := c.DevicePublicKey(ctx, "notes.txt"); err != nil {
		t.Fatal(err)
	}
	// an ordinary file still comes back
	if err := c.Put(ctx, "hello.txt", []byte("hello"), nil); err != nil {
		t.Fatal(err)
	}
	if b, err := c.Get(ctx, "hello.txt", nil); err != nil || string(b) != "hello" {
		t.Fatalf("FS.Get hello.txt: %q %v", b, err)
	}
	assertKeyNeverSent(t, rp.received(), fileKeyScalar(t, dev))
}

// fileKeyScalar finds the firmware's key file in the flash (tests only).
func fileKeyScalar(t *testing.T, dev *sim.Device) []byte {
	t.Helper()
	fl := make([]byte, dev.Flash().Size())
	if err := dev.Flash().ReadAt(fl, 0); err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(fl, []byte("-----BEGIN EC PRIVATE KEY-----"))
	if i < 0 {
		t.Fatal("no key file in flash")
	}
	b, _ := pem.Decode(fl[i:])
	k, err := x509.ParseECPrivateKey(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.D.FillBytes(make([]byte, 32))
}

// testPKI is a CA, a broker certificate for 127.0.0.1 and the files the
// device needs.
type testPKI struct {
	caKey  *ecdsa.PrivateKey
	ca     *x509.Certificate
	caPEM  []byte
	server tls.Certificate
}

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test fleet CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &testPKI{caKey: caKey, ca: ca, caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvDER := p.sign(t, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "broker"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, &srvKey.PublicKey)
	p.server = tls.Certificate{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}
	return p
}

func (p *testPKI) sign(t *testing.T, tmpl *x509.Certificate, pub any) []byte {
	t.Helper()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, pub, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// testBroker is mochi-mqtt with mutual TLS: client certificates from the
// test CA only, and a client may only use its certificate's CN as its id.
type testBroker struct {
	srv   *mqtt.Server
	addr  string
	close func()
}

func startBroker(t *testing.T, pki *testPKI, addr string) *testBroker {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(pki.ca)
	srv := mqtt.New(&mqtt.Options{InlineClient: true, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := srv.AddHook(new(cnHook), nil); err != nil {
		t.Fatal(err)
	}
	l := listeners.NewTCP(listeners.Config{ID: "tls", Address: addr, TLSConfig: &tls.Config{
		Certificates: []tls.Certificate{pki.server}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12,
	}})
	if err := srv.AddListener(l); err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	b := &testBroker{srv: srv, addr: l.Address(), close: sync.OnceFunc(func() { srv.Close() })}
	t.Cleanup(b.close)
	return b
}

// cnHook admits a client only under its certificate's CN.
type cnHook struct {
	auth.AllowHook
}

func (h *cnHook) ID() string { return "cn" }

func (h *cnHook) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (h *cnHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	if cl.Net.Inline {
		return true
	}
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return false
	}
	st := tc.ConnectionState()
	return len(st.PeerCertificates) > 0 && st.PeerCertificates[0].Subject.CommonName == string(pk.Connect.ClientIdentifier)
}

// TestMQTTMutualTLSWithChipKey: the device connects to a broker that
// requires its certificate, with its key in the crypto chip; its hello
// arrives, a command gets its reply, and after the broker goes away and
// comes back the device reconnects.
func TestMQTTMutualTLSWithChipKey(t *testing.T) {
	url, dev := bootDemo(t, withFlashFile(t))
	c, rp := connectRecording(t, url)
	ctx := t.Context()
	enableATCA(t, c)
	if err := c.ATCALockZone(ctx, provision.ATCAZoneConfig); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GenerateDeviceKey(ctx, "ATCA:0"); err != nil {
		t.Fatal(err)
	}
	if err := c.ATCALockZone(ctx, provision.ATCAZoneData); err != nil {
		t.Fatal(err)
	}
	info, err := c.GetInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := c.DeviceSigner(ctx, "ATCA:0")
	if err != nil {
		t.Fatal(err)
	}
	pki := newTestPKI(t)
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: info.ID}}, signer)
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(csrDER)
	certDER := pki.sign(t, &x509.Certificate{SerialNumber: big.NewInt(3), Subject: csr.Subject,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, csr.PublicKey)
	broker := startBroker(t, pki, "127.0.0.1:0")

	events := make(chan []byte, 64)
	replies := make(chan []byte, 8)
	base := "devices/" + info.ID
	subscribe := func(b *testBroker) {
		b.srv.Subscribe(base+"/events", 1, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			events <- bytes.Clone(pk.Payload)
		})
		b.srv.Subscribe(base+"/replies", 2, func(_ *mqtt.Client, _ packets.Subscription, pk packets.Packet) {
			replies <- bytes.Clone(pk.Payload)
		})
	}
	subscribe(broker)

	if err := c.Put(ctx, "ca.pem", pki.caPEM, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "device.crt.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), nil); err != nil {
		t.Fatal(err)
	}
	signsBefore := dev.CryptoChip().Signs()
	_, err = c.ConfigSet(ctx, map[string]any{
		"wifi.sta.enable": true, "wifi.sta.ssid": "mos-demo-net", "wifi.sta.pass": "demo-pass-1234",
		"mqtt.enable": true, "mqtt.server": broker.addr, "mqtt.ssl_ca_cert": "ca.pem",
		"mqtt.ssl_cert": "device.crt.pem", "mqtt.ssl_key": "ATCA:0",
	}, provision.SetOptions{Save: true, Reboot: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("console:\n%s", rp.received())
		}
	})
	hello := waitEvent(t, events, "hello")
	if hello["id"] != info.ID {
		t.Fatalf("hello from %v", hello["id"])
	}
	st := waitStatus(t, c, true)
	if st.ClientID != info.ID || st.Broker != broker.addr {
		t.Fatalf("MQTT.Status %+v", st)
	}
	if dev.CryptoChip().Signs() <= signsBefore {
		t.Fatal("the TLS handshake did not sign in the crypto chip")
	}
	waitEvent(t, events, "telemetry")

	// a command and its reply
	if err := broker.srv.Publish(base+"/commands", []byte(`{"id":7,"cmd":"ping"}`), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-replies:
		var rep struct {
			ID     int    `json:"id"`
			Result string `json:"result"`
		}
		if json.Unmarshal(r, &rep) != nil || rep.ID != 7 || rep.Result != "pong" {
			t.Fatalf("reply %s", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply to ping")
	}
	if err := broker.srv.Publish(base+"/commands", []byte(`{"id":8,"cmd":"config.set","config":{"device":{"sn":"SN-42"}}}`), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-replies:
		if !strings.Contains(string(r), `"saved": true`) {
			t.Fatalf("config.set reply %s", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply to config.set")
	}
	if sn, err := c.ConfigGet(ctx, "device.sn"); err != nil || string(sn) != `"SN-42"` {
		t.Fatalf("device.sn after config.set: %s %v", sn, err)
	}

	// the broker goes away: the device notices, backs off, reconnects
	addr := broker.addr
	broker.close()
	st = waitStatus(t, c, false)
	if st.LastError == "" {
		t.Fatalf("disconnected without a last error: %+v", st)
	}
	broker2 := startBroker(t, pki, addr)
	subscribe(broker2)
	waitEvent(t, events, "hello")
	waitStatus(t, c, true)

	// a reboot command: the reply first, then the device restarts and
	// says hello again
	resets := bytes.Count(rp.received(), []byte("rst:0xc (SW_CPU_RESET)"))
	if err := broker2.srv.Publish(base+"/commands", []byte(`{"id":9,"cmd":"reboot"}`), false, 1); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-replies:
		if !strings.Contains(string(r), `"result": "rebooting"`) {
			t.Fatalf("reboot reply %s", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no reply to reboot")
	}
	waitEvent(t, events, "hello")
	waitStatus(t, c, true)
	if n := bytes.Count(rp.received(), []byte("rst:0xc (SW_CPU_RESET)")); n != resets+1 {
		t.Errorf("%d software resets after the reboot command, want 1", n-resets)
	}

	assertKeyNeverSent(t, rp.received(), chipScalar(t, dev))
	for _, line := range []string{"MQTT0 connecting to " + addr, "MQTT0 TCP connect ok", "MQTT0 CONNACK 0", "MQTT0 sub " + base + "/commands", "MQTT0 Disconnect", "MQTT0 connecting after"} {
		if !bytes.Contains(rp.received(), []byte(line)) {
			t.Errorf("the console never showed %q", line)
		}
	}
}

// TestMQTTWrongCAIsRefused: a device whose certificate the broker's CA did
// not issue never gets connected, and says why.
func TestMQTTWrongCAIsRefused(t *testing.T) {
	url, _ := bootDemo(t, "&fast=1")
	c, _ := connectRecording(t, url)
	ctx := t.Context()
	pub, err := c.GenerateDeviceKey(ctx, "device.key.pem")
	if err != nil {
		t.Fatal(err)
	}
	info, _ := c.GetInfo(ctx)
	brokerPKI, otherPKI := newTestPKI(t), newTestPKI(t)
	certDER := otherPKI.sign(t, &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: info.ID},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}, pub)
	broker := startBroker(t, brokerPKI, "127.0.0.1:0")
	c.Put(ctx, "ca.pem", brokerPKI.caPEM, nil)
	c.Put(ctx, "device.crt.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certDER}), nil)
	_, err = c.ConfigSet(ctx, map[string]any{
		"wifi.sta.enable": true, "wifi.sta.ssid": "mos-demo-net", "wifi.sta.pass": "demo-pass-1234",
		"mqtt.enable": true, "mqtt.server": broker.addr, "mqtt.ssl_ca_cert": "ca.pem",
		"mqtt.ssl_cert": "device.crt.pem", "mqtt.ssl_key": "device.key.pem",
	}, provision.SetOptions{Save: true, Reboot: true})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.MQTTStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Connected {
			t.Fatal("connected with a certificate from another CA")
		}
		if st.LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no error reported: %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func waitEvent(t *testing.T, events <-chan []byte, kind string) map[string]any {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case e := <-events:
			var m map[string]any
			if err := json.Unmarshal(e, &m); err != nil {
				t.Fatalf("event %s: %v", e, err)
			}
			if m["event"] == kind {
				return m
			}
		case <-timeout:
			t.Fatalf("no %s event", kind)
		}
	}
}

func waitStatus(t *testing.T, c *provision.Client, connected bool) provision.MQTTStatus {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	for {
		st, err := c.MQTTStatus(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Connected == connected {
			return st
		}
		select {
		case <-ctx.Done():
			t.Fatalf("MQTT connected never became %v: %+v", connected, st)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestATCAAbsentChip: with the library enabled but no chip on the board,
// the ATCA methods are not registered and the boot log says why.
func TestATCAAbsentChip(t *testing.T) {
	url, _ := bootDemo(t, "&fast=1&atca=0")
	c, rp := connectRecording(t, url)
	enableATCA(t, c)
	if _, _, _, err := c.ATCAConfig(t.Context()); rpcCode(err) != 404 {
		t.Fatalf("ATCA.GetConfig without a chip: %v, want 404", err)
	}
	if !bytes.Contains(rp.received(), []byte("ATCA: Failed to initialize (bus 0 addr 0x60): 0xf0")) {
		t.Fatalf("boot log does not say the chip is missing:\n%s", rp.received())
	}
}

// TestMQTTOnlyLoopback: the virtual device's network reaches the host's
// loopback addresses only; elsewhere the attempt fails and says so.
func TestMQTTOnlyLoopback(t *testing.T) {
	url, _ := bootDemo(t, "&fast=1")
	c, _ := connectRecording(t, url)
	_, err := c.ConfigSet(t.Context(), map[string]any{
		"wifi.sta.enable": true, "wifi.sta.ssid": "mos-demo-net", "wifi.sta.pass": "demo-pass-1234",
		"mqtt.enable": true, "mqtt.server": "192.0.2.1:1883",
	}, provision.SetOptions{Save: true, Reboot: true})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := c.MQTTStatus(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(st.LastError, "reaches only the host's loopback addresses") {
			if st.Connected || st.Broker != "192.0.2.1:1883" {
				t.Fatalf("status %+v", st)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %+v", st)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
