// Package ca is a local certificate authority for a fleet of devices: a root
// and an intermediate (ECDSA P-256), device certificates signed by the
// intermediate from the devices' CSRs (CN = device id), unique random serial
// numbers, a CRL, and an index of every certificate issued.
//
// Layout of a CA directory (private keys encrypted, see keyfile.go; every
// file 0600, the directory 0700):
//
//	root.crt           root certificate (self-signed)
//	root.key           root key, encrypted
//	intermediate.crt   intermediate certificate, signed by the root
//	intermediate.key   intermediate key, encrypted
//	chain.pem          intermediate then root: what a broker's cafile and a
//	                   device's mqtt.ssl_ca_cert need
//	crl.pem            CRL of the intermediate (device certificates)
//	index.json         every certificate issued, with its state
//	issued/SERIAL.crt  each device certificate
//	broker/            `mos broker`'s own certificate and (plain, 0600) key
//
// The package does no device I/O and prints nothing.
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// File names inside a CA directory.
const (
	RootCertFile  = "root.crt"
	RootKeyFile   = "root.key"
	InterCertFile = "intermediate.crt"
	InterKeyFile  = "intermediate.key"
	ChainFile     = "chain.pem"
	CRLFile       = "crl.pem"
	IndexFile     = "index.json"
	IssuedDir     = "issued"
)

// Default validity periods.
const (
	DefaultRootValidity   = 20 * 365 * 24 * time.Hour
	DefaultInterValidity  = 10 * 365 * 24 * time.Hour
	DefaultDeviceValidity = 5 * 365 * 24 * time.Hour
	// crlValidity is how long a CRL is valid (its NextUpdate): brokers
	// refuse every client once the CRL has expired, so it is long and
	// re-issued at every revoke and on `mos ca list --crl`.
	crlValidity = 365 * 24 * time.Hour
)

// Status of an issued certificate.
const (
	StatusValid   = "valid"
	StatusRevoked = "revoked"
)

// Record is one issued certificate in the index.
type Record struct {
	Serial    string    `json:"serial"` // lower-case hex
	DeviceID  string    `json:"device_id"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	SHA256    string    `json:"sha256"` // fingerprint of the DER certificate
	Status    string    `json:"status"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	Reason    string    `json:"reason,omitempty"`
	File      string    `json:"file"` // relative to the CA directory
}

// CA is an opened CA directory. Its intermediate key is only in memory after
// Unlock.
type CA struct {
	Dir   string
	Root  *x509.Certificate
	Inter *x509.Certificate

	interKey *ecdsa.PrivateKey
}

// InitOptions set the names and lifetimes of a new CA.
type InitOptions struct {
	Name          string // organisation / CA name used in the subjects
	RootValidity  time.Duration
	InterValidity time.Duration
}

// ErrExists is returned by Init when the directory already holds a CA.
var ErrExists = errors.New("a CA already exists in this directory")

// ErrNotCA is returned by Open when the directory holds no CA.
var ErrNotCA = errors.New("no CA in this directory")

// errLocked refuses to sign before Unlock has decrypted the intermediate's key.
var errLocked = errors.New("CA is locked: Unlock it with the passphrase first")

// Init creates a new root and intermediate in dir with keys encrypted under
// pass. It refuses to overwrite an existing CA.
func Init(dir string, o InitOptions, pass []byte) (*CA, error) {
	if len(pass) == 0 {
		return nil, errors.New("an empty passphrase is not allowed for a CA key")
	}
	if _, err := os.Stat(filepath.Join(dir, RootCertFile)); err == nil {
		return nil, fmt.Errorf("%s: %w", dir, ErrExists)
	}
	if o.Name == "" {
		o.Name = "mos fleet CA"
	}
	if o.RootValidity == 0 {
		o.RootValidity = DefaultRootValidity
	}
	if o.InterValidity == 0 {
		o.InterValidity = DefaultInterValidity
	}
	if err := os.MkdirAll(filepath.Join(dir, IssuedDir), 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now().Add(-5 * time.Minute) // tolerate small clock skew
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	rootTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: o.Name + " root", Organization: []string{o.Name}},
		NotBefore:             now,
		NotAfter:              now.Add(o.RootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	root, err := issue(rootTmpl, rootTmpl, &rootKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	interKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	interTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: o.Name + " intermediate", Organization: []string{o.Name}},
		NotBefore:             now,
		NotAfter:              now.Add(o.InterValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
	}
	inter, err := issue(interTmpl, root, &interKey.PublicKey, rootKey)
	if err != nil {
		return nil, err
	}
	rk, err := encryptKey(rootKey, pass)
	if err != nil {
		return nil, err
	}
	ik, err := encryptKey(interKey, pass)
	if err != nil {
		return nil, err
	}
	c := &CA{Dir: dir, Root: root, Inter: inter, interKey: interKey}
	files := []struct {
		name string
		data []byte
	}{
		{RootKeyFile, rk},
		{InterKeyFile, ik},
		{RootCertFile, certPEM(root)},
		{InterCertFile, certPEM(inter)},
		{ChainFile, c.ChainPEM()},
		{IndexFile, []byte("[]\n")},
	}
	for _, f := range files {
		if err := writeFile(filepath.Join(dir, f.name), f.data); err != nil {
			return nil, err
		}
	}
	if err := c.writeCRL(nil); err != nil {
		return nil, err
	}
	return c, nil
}

// Open reads the public parts of the CA in dir.
func Open(dir string) (*CA, error) {
	root, err := readCert(filepath.Join(dir, RootCertFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotCA)
	}
	if err != nil {
		return nil, err
	}
	inter, err := readCert(filepath.Join(dir, InterCertFile))
	if err != nil {
		return nil, err
	}
	return &CA{Dir: dir, Root: root, Inter: inter}, nil
}

// Unlock decrypts the intermediate key, which signs device certificates and
// the CRL. A wrong passphrase gives ErrWrongPassphrase.
func (c *CA) Unlock(pass []byte) error {
	data, err := os.ReadFile(filepath.Join(c.Dir, InterKeyFile))
	if err != nil {
		return err
	}
	k, err := decryptKey(data, pass)
	if err != nil {
		return err
	}
	if !k.PublicKey.Equal(c.Inter.PublicKey) {
		return errors.New("intermediate key does not match intermediate.crt")
	}
	c.interKey = k
	return nil
}

// ChainPEM returns the intermediate and root certificates, PEM, in that
// order.
func (c *CA) ChainPEM() []byte { return append(certPEM(c.Inter), certPEM(c.Root)...) }

// Path returns the path of a file in the CA directory.
func (c *CA) Path(name string) string { return filepath.Join(c.Dir, name) }

// SignOptions set a device certificate's lifetime. NotBefore defaults to now
// (less five minutes of clock skew); a certificate never outlives the
// intermediate.
type SignOptions struct {
	NotBefore time.Time
	Validity  time.Duration
	// DeviceID, when set, must equal the CSR's CN.
	DeviceID string
}

// deviceIDRe is what a CN may hold: it becomes an MQTT topic level and a
// mosquitto user name (use_identity_as_username), so no '/', '+', '#'.
var deviceIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

// ValidDeviceID reports whether id can be a certificate CN and a topic level.
func ValidDeviceID(id string) error {
	if !deviceIDRe.MatchString(id) {
		return fmt.Errorf("device id %q: use letters, digits and _ . : - (no / + # or spaces), at most 128 characters", id)
	}
	return nil
}

// Sign issues a device certificate for a CSR: the CSR's signature is checked
// (so the requester holds the private key), its CN is the device id, and its
// key must be ECDSA P-256. The certificate is recorded in the index and
// stored under issued/.
func (c *CA) Sign(csr *x509.CertificateRequest, o SignOptions) (*x509.Certificate, error) {
	if c.interKey == nil {
		return nil, errLocked
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("CSR signature does not verify: %w", err)
	}
	pub, ok := csr.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("CSR key must be ECDSA P-256")
	}
	id := csr.Subject.CommonName
	if err := ValidDeviceID(id); err != nil {
		return nil, fmt.Errorf("CSR common name: %w", err)
	}
	if o.DeviceID != "" && o.DeviceID != id {
		return nil, fmt.Errorf("CSR common name %q is not the device id %q", id, o.DeviceID)
	}
	tmpl := c.leafTemplate(id, o.NotBefore, o.Validity, x509.ExtKeyUsageClientAuth)
	cert, err := issue(tmpl, c.Inter, pub, c.interKey)
	if err != nil {
		return nil, err
	}
	if err := c.record(cert, id); err != nil {
		return nil, err
	}
	return cert, nil
}

// leafTemplate is the template of a certificate the intermediate issues
// (a device's or a broker's): NotBefore defaults to now less five minutes
// of clock skew, the validity to DefaultDeviceValidity, and it never
// outlives the intermediate.
func (c *CA) leafTemplate(cn string, nb time.Time, validity time.Duration, usage x509.ExtKeyUsage) *x509.Certificate {
	if nb.IsZero() {
		nb = time.Now().Add(-5 * time.Minute)
	}
	if validity == 0 {
		validity = DefaultDeviceValidity
	}
	na := nb.Add(validity)
	if na.After(c.Inter.NotAfter) {
		na = c.Inter.NotAfter
	}
	return &x509.Certificate{
		Subject:               pkix.Name{CommonName: cn, Organization: c.Inter.Subject.Organization},
		NotBefore:             nb,
		NotAfter:              na,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{usage},
		BasicConstraintsValid: true,
	}
}

// record stores an issued certificate under issued/ and in the index.
func (c *CA) record(cert *x509.Certificate, id string) error {
	serial := serialHex(cert.SerialNumber)
	rel := filepath.Join(IssuedDir, serial+".crt")
	if err := writeFile(filepath.Join(c.Dir, rel), certPEM(cert)); err != nil {
		return err
	}
	fp := sha256.Sum256(cert.Raw)
	recs, err := c.List()
	if err != nil {
		return err
	}
	recs = append(recs, Record{
		Serial: serial, DeviceID: id, NotBefore: cert.NotBefore, NotAfter: cert.NotAfter,
		SHA256: hex.EncodeToString(fp[:]), Status: StatusValid, File: rel,
	})
	return c.writeIndex(recs)
}

// List returns every certificate issued, oldest first.
func (c *CA) List() ([]Record, error) {
	data, err := os.ReadFile(filepath.Join(c.Dir, IndexFile))
	if err != nil {
		return nil, err
	}
	var recs []Record
	if err := json.Unmarshal(data, &recs); err != nil {
		return nil, fmt.Errorf("%s: %w", IndexFile, err)
	}
	return recs, nil
}

// ErrUnknownSerial is returned by Revoke for a serial the index does not hold.
var ErrUnknownSerial = errors.New("no certificate with this serial in the index")

// Revoke marks the certificates whose serial is given (hex) as revoked and
// re-issues the CRL. Revoking a revoked certificate changes nothing.
func (c *CA) Revoke(serial, reason string) (Record, error) {
	if c.interKey == nil {
		return Record{}, errLocked
	}
	want := normSerial(serial)
	recs, err := c.List()
	if err != nil {
		return Record{}, err
	}
	i := -1
	for j := range recs {
		if recs[j].Serial == want {
			i = j
		}
	}
	if i < 0 {
		return Record{}, fmt.Errorf("%s: %w", serial, ErrUnknownSerial)
	}
	if recs[i].Status != StatusRevoked {
		recs[i].Status = StatusRevoked
		recs[i].RevokedAt = time.Now().UTC().Truncate(time.Second)
		recs[i].Reason = reason
		if err := c.writeIndex(recs); err != nil {
			return Record{}, err
		}
	}
	return recs[i], c.writeCRL(recs)
}

// RefreshCRL re-issues the CRL from the index (a new NextUpdate).
func (c *CA) RefreshCRL() error {
	if c.interKey == nil {
		return errLocked
	}
	recs, err := c.List()
	if err != nil {
		return err
	}
	return c.writeCRL(recs)
}

func (c *CA) writeCRL(recs []Record) error {
	var entries []x509.RevocationListEntry
	for _, r := range recs {
		if r.Status != StatusRevoked {
			continue
		}
		n, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			return fmt.Errorf("index: bad serial %q", r.Serial)
		}
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: r.RevokedAt})
	}
	// The CRL number must grow with each CRL (RFC 5280 5.2.3); time in
	// nanoseconds does.
	now := time.Now()
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now.Add(-5 * time.Minute),
		NextUpdate:                now.Add(crlValidity),
		RevokedCertificateEntries: entries,
	}, c.Inter, c.interKey)
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(c.Dir, CRLFile), pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
}

func (c *CA) writeIndex(recs []Record) error {
	sort.SliceStable(recs, func(i, j int) bool { return recs[i].NotBefore.Before(recs[j].NotBefore) })
	data, err := json.MarshalIndent(recs, "", "  ")
	if err != nil {
		return err
	}
	return writeFile(filepath.Join(c.Dir, IndexFile), append(data, '\n'))
}

// issue signs tmpl with a fresh random serial: 128 bits from crypto/rand
// (CA/Browser Forum baseline requirements ask for at least 64), positive.
func issue(tmpl, parent *x509.Certificate, pub crypto.PublicKey, key crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial.Add(serial, new(big.Int).Lsh(big.NewInt(1), 120)) // never short or zero
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func serialHex(n *big.Int) string { return fmt.Sprintf("%x", n) }

func normSerial(s string) string {
	s = strings.ToLower(strings.TrimPrefix(strings.ReplaceAll(s, ":", ""), "0x"))
	return strings.TrimLeft(s, "0")
}

func certPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// ParseCSR reads a PEM or DER certificate request.
func ParseCSR(data []byte) (*x509.CertificateRequest, error) {
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "CERTIFICATE REQUEST" && b.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("PEM block %q is not a certificate request", b.Type)
		}
		data = b.Bytes
	}
	return x509.ParseCertificateRequest(data)
}

// CertPEM returns a certificate as PEM.
func CertPEM(c *x509.Certificate) []byte { return certPEM(c) }

func readCert(path string) (*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s: no PEM certificate", path)
	}
	return x509.ParseCertificate(b.Bytes)
}

// writeFile writes atomically (temporary file then rename) with mode 0600.
func writeFile(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// ParseCRL reads a PEM or DER CRL.
func ParseCRL(data []byte) (*x509.RevocationList, error) {
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	return x509.ParseRevocationList(data)
}

// IssueServer makes a key and a TLS server certificate for a broker, with
// the host names and IP addresses given as subject alternative names. The
// broker's key is made here because the broker runs here; it is returned
// unencrypted (PKCS#8 PEM) since brokers read it at start. The certificate
// PEM holds the leaf then the intermediate. Server
// certificates are recorded in the index like device certificates.
func (c *CA) IssueServer(names []string, validity time.Duration) (certPEMData, keyPEM []byte, err error) {
	if c.interKey == nil {
		return nil, nil, errLocked
	}
	if len(names) == 0 {
		return nil, nil, errors.New("a server certificate needs at least one host name or address")
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl := c.leafTemplate(names[0], time.Time{}, validity, x509.ExtKeyUsageServerAuth)
	for _, n := range names {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	cert, err := issue(tmpl, c.Inter, &k.PublicKey, c.interKey)
	if err != nil {
		return nil, nil, err
	}
	if err := c.record(cert, "server:"+names[0]); err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	// The intermediate follows the leaf so that clients that trust only
	// the root can build the chain.
	return append(certPEM(cert), certPEM(c.Inter)...), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
