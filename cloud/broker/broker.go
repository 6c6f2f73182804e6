package broker

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mos-tool/mos/cloud/ca"
)

// Options configure the embedded broker.
type Options struct {
	Listen string // host:port; port 0 picks a free one
	// CA is the fleet CA whose intermediate signed the client certificates;
	// only its public certificates and CRL are used.
	CA *ca.CA
	// Server is the broker's own certificate (see ServerCertificate).
	Server tls.Certificate
	// Monitors are certificate CNs that may read every device's topics.
	Monitors []string
	// Logger receives connection and refusal events; nil discards them.
	Logger *slog.Logger
	// OnMessage, when set, is called for each message a client publishes
	// (after the ACL allowed it).
	OnMessage func(clientID, topic string, payload []byte)
}

// Broker is a running embedded MQTT broker (mochi-mqtt) that requires a
// client certificate from the fleet CA, checks the CA's CRL at every
// handshake, requires the MQTT client id to equal the certificate CN, and
// lets each device publish and subscribe only under devices/<CN>/.
type Broker struct {
	srv  *mqtt.Server
	addr net.Addr
	crl  *crlCache
}

// Start starts the broker; Close stops it.
func Start(o Options) (*Broker, error) {
	if o.CA == nil {
		return nil, errors.New("broker: no fleet CA")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pool := x509.NewCertPool()
	pool.AddCert(o.CA.Root)
	inter := x509.NewCertPool()
	inter.AddCert(o.CA.Inter)
	crl := &crlCache{path: o.CA.Path(ca.CRLFile), issuer: o.CA.Inter}
	if _, err := crl.revoked(); err != nil {
		return nil, fmt.Errorf("broker: CRL: %w", err)
	}
	tc := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{o.Server},
		// Verified by hand in VerifyConnection so that a client that sends
		// only its leaf still chains through the intermediate.
		ClientAuth: tls.RequireAnyClientCert,
		VerifyConnection: func(cs tls.ConnectionState) error {
			err := verifyClient(cs, pool, inter, crl)
			if err != nil {
				log.Warn("client certificate refused", "error", err)
			}
			return err
		},
	}
	// Listen here rather than in mochi so port 0 gives the real address.
	ln, err := net.Listen("tcp", o.Listen)
	if err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	srv := mqtt.New(&mqtt.Options{Logger: log, InlineClient: false})
	h := &aclHook{monitors: map[string]bool{}, onMessage: o.OnMessage, log: log}
	for _, m := range o.Monitors {
		h.monitors[m] = true
	}
	if err := srv.AddHook(h, nil); err != nil {
		ln.Close()
		return nil, err
	}
	l := listeners.NewNet("mtls", tls.NewListener(ln, tc))
	if err := srv.AddListener(l); err != nil {
		ln.Close()
		return nil, err
	}
	b := &Broker{srv: srv, addr: ln.Addr(), crl: crl}
	if err := srv.Serve(); err != nil {
		ln.Close()
		return nil, err
	}
	return b, nil
}

// Addr is the address the broker listens on.
func (b *Broker) Addr() net.Addr { return b.addr }

// Close stops the broker and disconnects its clients.
func (b *Broker) Close() error { return b.srv.Close() }

// verifyClient checks the client chain against the fleet CA and the CRL.
func verifyClient(cs tls.ConnectionState, roots, inter *x509.CertPool, crl *crlCache) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no client certificate")
	}
	leaf := cs.PeerCertificates[0]
	// Only the fleet's own intermediate is accepted as the issuer,
	// whatever chain the client sends.
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if _, err := leaf.Verify(opts); err != nil {
		return fmt.Errorf("certificate %q: %w", leaf.Subject.CommonName, err)
	}
	rev, err := crl.revoked()
	if err != nil {
		return fmt.Errorf("CRL unreadable, refusing all clients: %w", err)
	}
	if rev[leaf.SerialNumber.Text(16)] {
		return fmt.Errorf("certificate %q (serial %x) is revoked", leaf.Subject.CommonName, leaf.SerialNumber)
	}
	if err := ca.ValidDeviceID(leaf.Subject.CommonName); err != nil {
		return err
	}
	return nil
}

// crlCache re-reads the CRL file when it changes, so `mos ca revoke` takes
// effect without restarting the broker.
type crlCache struct {
	path   string
	issuer *x509.Certificate

	mu    sync.Mutex
	mtime time.Time
	size  int64
	set   map[string]bool
}

func (c *crlCache) revoked() (map[string]bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := os.Stat(c.path)
	if err != nil {
		return nil, err
	}
	if c.set != nil && st.ModTime().Equal(c.mtime) && st.Size() == c.size {
		return c.set, nil
	}
	data, err := os.ReadFile(c.path)
	if err != nil {
		return nil, err
	}
	crl, err := ca.ParseCRL(data)
	if err != nil {
		return nil, err
	}
	if err := crl.CheckSignatureFrom(c.issuer); err != nil {
		return nil, fmt.Errorf("CRL is not signed by the fleet intermediate: %w", err)
	}
	if !crl.NextUpdate.IsZero() && time.Now().After(crl.NextUpdate) {
		return nil, fmt.Errorf("CRL expired on %s (refresh it with `mos ca list --refresh-crl`)", crl.NextUpdate.Format(time.DateOnly))
	}
	set := map[string]bool{}
	for _, e := range crl.RevokedCertificateEntries {
		set[e.SerialNumber.Text(16)] = true
	}
	c.set, c.mtime, c.size = set, st.ModTime(), st.Size()
	return set, nil
}

// aclHook authenticates by certificate CN and keeps each device to
// devices/<CN>/.
type aclHook struct {
	mqtt.HookBase
	monitors  map[string]bool
	onMessage func(clientID, topic string, payload []byte)
	log       *slog.Logger
}

func (h *aclHook) ID() string { return "mos-fleet-acl" }

func (h *aclHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublished}, []byte{b})
}

// peerCN is the CN of the verified client certificate of a connection.
func peerCN(cl *mqtt.Client) string {
	tc, ok := cl.Net.Conn.(*tls.Conn)
	if !ok {
		return ""
	}
	cs := tc.ConnectionState()
	if !cs.HandshakeComplete || len(cs.PeerCertificates) == 0 {
		return ""
	}
	return cs.PeerCertificates[0].Subject.CommonName
}

func (h *aclHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	id := peerCN(cl)
	if id == "" {
		h.log.Warn("connection without a verified certificate refused", "remote", cl.Net.Remote)
		return false
	}
	// A device connects as itself: otherwise it could take over another
	// device's session. Monitors may use any client id.
	if !h.monitors[id] && pk.Connect.ClientIdentifier != id {
		h.log.Warn("client id is not the certificate CN", "cn", id, "client_id", pk.Connect.ClientIdentifier)
		return false
	}
	h.log.Info("client connected", "cn", id, "remote", cl.Net.Remote)
	return true
}

func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	id := peerCN(cl)
	if id == "" {
		return false
	}
	own := "devices/" + id
	if topic == own || strings.HasPrefix(topic, own+"/") {
		return true
	}
	if h.monitors[id] && !write && (topic == "devices/#" || strings.HasPrefix(topic, "devices/")) {
		return true
	}
	h.log.Warn("topic refused", "cn", id, "topic", topic, "write", write)
	return false
}

func (h *aclHook) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	if h.onMessage != nil {
		h.onMessage(cl.ID, pk.TopicName, append([]byte(nil), pk.Payload...))
	}
}

// ServerCertificate returns the broker's certificate and key kept in dir
// (server.crt, server.key), issuing new ones from the fleet CA when they are
// missing, do not cover every host, or expire within 30 days. unlock is
// called only then, to decrypt the CA's key.
func ServerCertificate(c *ca.CA, dir string, hosts []string, unlock func() error) (cert tls.Certificate, issued bool, err error) {
	certPath, keyPath := filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	if kp, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && coversHosts(kp.Leaf, hosts) &&
		time.Until(kp.Leaf.NotAfter) > 30*24*time.Hour && kp.Leaf.CheckSignatureFrom(c.Inter) == nil {
		return kp, false, nil
	}
	if err := unlock(); err != nil {
		return tls.Certificate{}, false, err
	}
	certPEM, keyPEM, err := c.IssueServer(hosts, 0)
	if err != nil {
		return tls.Certificate{}, false, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	if err := os.WriteFile(certPath, certPEM, 0o600); err != nil {
		return tls.Certificate{}, false, err
	}
	kp, err := tls.X509KeyPair(certPEM, keyPEM)
	return kp, true, err
}

func coversHosts(leaf *x509.Certificate, hosts []string) bool {
	if leaf == nil {
		return false
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}
