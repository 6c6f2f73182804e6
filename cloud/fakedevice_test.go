package cloud

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/mos-tool/mos/provision"
)

// fakeDevice stands in for a device's RPC client: it keeps its keys to
// itself (only public keys and signatures leave it) and, when it boots with
// mqtt.enable, connects to mqtt.server with its certificate, as the
// firmware does, and publishes a hello on devices/<id>/events.
type fakeDevice struct {
	mu      sync.Mutex
	config  map[string]any // flat keys
	files   map[string][]byte
	keys    map[string]*ecdsa.PrivateKey
	signs   int // signatures made by device keys
	reboots int
	puts    []string
	sets    int
	status  MQTTStatus
	client  mqtt.Client
	// dataPlane, when set, stands in for a broker the test cannot run
	// (AWS IoT): it judges the connection from what the device would
	// present and returns the error the device would log, "" if connected.
	dataPlane func(server, thing string, cert, caFile []byte) string
}

func newFakeDevice(id string) *fakeDevice {
	return &fakeDevice{
		config: map[string]any{"device.id": id, "mqtt.enable": false, "mqtt.server": "", "mqtt.ssl_cert": "",
			"mqtt.ssl_key": "", "mqtt.ssl_ca_cert": "", "aws.thing_name": ""},
		files: map[string][]byte{},
		keys:  map[string]*ecdsa.PrivateKey{},
	}
}

func (d *fakeDevice) ConfigGet(_ context.Context, key string) (json.RawMessage, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.config[key]; ok {
		return json.Marshal(v)
	}
	sub := map[string]any{}
	for k, v := range d.config {
		if rest, ok := strings.CutPrefix(k, key+"."); ok {
			sub[rest] = v
		}
	}
	if len(sub) == 0 {
		return nil, fmt.Errorf("no config key %q", key)
	}
	return json.Marshal(sub)
}

func (d *fakeDevice) ConfigSet(ctx context.Context, values map[string]any, o provision.SetOptions) (*provision.SetResult, error) {
	d.mu.Lock()
	r := &provision.SetResult{Changed: map[string]any{}}
	for k, v := range values {
		cur, ok := d.config[k]
		if !ok {
			d.mu.Unlock()
			return nil, fmt.Errorf("unknown key %s", k)
		}
		if cur != v {
			r.Changed[k] = v
			d.config[k] = v
		}
	}
	d.sets++
	d.mu.Unlock()
	if len(r.Changed) > 0 && o.Reboot {
		r.Saved, r.Rebooted = true, true
		return r, d.Reboot(ctx)
	}
	return r, nil
}

func (d *fakeDevice) Put(_ context.Context, name string, data []byte, _ provision.Progress) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files[name] = append([]byte(nil), data...)
	d.puts = append(d.puts, name)
	return nil
}

func (d *fakeDevice) Get(_ context.Context, name string, _ provision.Progress) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	b, ok := d.files[name]
	if !ok {
		return nil, errors.New("no such file")
	}
	return b, nil
}

func (d *fakeDevice) GenerateKey(_ context.Context, ref string) (*ecdsa.PublicKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys[ref] = k
	return &k.PublicKey, nil
}

func (d *fakeDevice) PublicKey(_ context.Context, ref string) (*ecdsa.PublicKey, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if k, ok := d.keys[ref]; ok {
		return &k.PublicKey, nil
	}
	if b, ok := d.files[ref]; ok { // a host-generated key written as a file
		k, err := parseKey(b)
		if err != nil {
			return nil, err
		}
		return &k.PublicKey, nil
	}
	return nil, fmt.Errorf("no key %s", ref)
}

func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("bad key file")
	}
	return x509.ParseECPrivateKey(blk.Bytes)
}

type deviceSigner struct {
	d   *fakeDevice
	ref string
	pub *ecdsa.PublicKey
}

func (s deviceSigner) Public() crypto.PublicKey { return s.pub }

func (s deviceSigner) Sign(_ io.Reader, digest []byte, o crypto.SignerOpts) ([]byte, error) {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	k, ok := s.d.keys[s.ref]
	if !ok {
		if b, ok2 := s.d.files[s.ref]; ok2 {
			k, _ = parseKey(b)
		}
	}
	if k == nil {
		return nil, errors.New("no key")
	}
	s.d.signs++
	return k.Sign(rand.Reader, digest, o)
}

func (d *fakeDevice) Signer(ctx context.Context, ref string) (crypto.Signer, error) {
	pub, err := d.PublicKey(ctx, ref)
	if err != nil {
		return nil, err
	}
	return deviceSigner{d: d, ref: ref, pub: pub}, nil
}

func (d *fakeDevice) MQTTStatus(context.Context) (MQTTStatus, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client != nil {
		d.status.Connected = d.client.IsConnectionOpen()
	}
	return d.status, nil
}

// Reboot restarts the "firmware": it drops its MQTT session and, if
// enabled, connects with the files and key its settings name.
func (d *fakeDevice) Reboot(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reboots++
	if d.client != nil {
		d.client.Disconnect(0)
		d.client = nil
	}
	d.status = MQTTStatus{}
	if en, _ := d.config["mqtt.enable"].(bool); !en {
		return nil
	}
	server := d.config["mqtt.server"].(string)
	id := d.config["device.id"].(string)
	d.status = MQTTStatus{Broker: server, ClientID: id}
	certPEM := d.files[d.config["mqtt.ssl_cert"].(string)]
	caPEM := d.files[d.config["mqtt.ssl_ca_cert"].(string)]
	ref := d.config["mqtt.ssl_key"].(string)
	k := d.keys[ref]
	if k == nil {
		k, _ = parseKey(d.files[ref])
	}
	roots := x509.NewCertPool()
	if k == nil || !roots.AppendCertsFromPEM(caPEM) {
		d.status.LastError = "no key or CA file"
		return nil
	}
	blk, _ := pem.Decode(certPEM)
	if blk == nil {
		d.status.LastError = "no certificate file"
		return nil
	}
	if d.dataPlane != nil {
		thing, _ := d.config["aws.thing_name"].(string)
		if e := d.dataPlane(server, thing, certPEM, caPEM); e != "" {
			d.status.LastError = e
		} else {
			d.status.Connected = true
		}
		return nil
	}
	host, _, _ := strings.Cut(server, ":")
	cl := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("ssl://" + server).SetClientID(id).
		SetTLSConfig(&tls.Config{RootCAs: roots, ServerName: host, MaxVersion: tls.VersionTLS12,
			Certificates: []tls.Certificate{{Certificate: [][]byte{blk.Bytes}, PrivateKey: k}}}).
		SetAutoReconnect(false).SetConnectTimeout(3 * time.Second))
	tok := cl.Connect()
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		d.status.LastError = fmt.Sprint(tok.Error())
		return nil
	}
	cl.Publish("devices/"+id+"/events", 1, false, fmt.Sprintf(`{"hello":%q}`, id)).WaitTimeout(5 * time.Second)
	d.client = cl
	return nil
}

func (d *fakeDevice) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.client != nil {
		d.client.Disconnect(0)
	}
}
