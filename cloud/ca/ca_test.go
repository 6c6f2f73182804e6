package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testPass = []byte("correct horse")

func newCSR(t *testing.T, cn string) (*x509.CertificateRequest, *ecdsa.PrivateKey) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr, k
}

func initCA(t *testing.T) *CA {
	t.Helper()
	c, err := Init(t.TempDir(), InitOptions{Name: "test fleet"}, testPass)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInitFilesAreEncryptedAndPrivate(t *testing.T) {
	c := initCA(t)
	for _, name := range []string{RootKeyFile, InterKeyFile, RootCertFile, InterCertFile, ChainFile, CRLFile, IndexFile} {
		st, err := os.Stat(c.Path(name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	for _, name := range []string{RootKeyFile, InterKeyFile} {
		data, _ := os.ReadFile(c.Path(name))
		if !strings.Contains(string(data), "BEGIN "+encryptedKeyType) || strings.Contains(string(data), "BEGIN PRIVATE KEY") {
			t.Errorf("%s is not in the encrypted format:\n%s", name, data)
		}
	}
	if _, err := Init(c.Dir, InitOptions{}, testPass); !errors.Is(err, ErrExists) {
		t.Errorf("second Init: %v, want ErrExists", err)
	}
}

func TestUnlock(t *testing.T) {
	c := initCA(t)
	tests := []struct {
		name string
		pass string
		want error
	}{
		{"right", string(testPass), nil},
		{"wrong", "correct horse!", ErrWrongPassphrase},
		{"empty", "", ErrWrongPassphrase},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := Open(c.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Unlock([]byte(tt.pass)); !errors.Is(err, tt.want) {
				t.Fatalf("Unlock: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestTamperedKeyFileRefused(t *testing.T) {
	c := initCA(t)
	data, _ := os.ReadFile(c.Path(InterKeyFile))
	// Weaken the KDF parameters in the header: authenticated, so refused.
	bad := strings.Replace(string(data), "N=32768", "N=16384", 1)
	if err := os.WriteFile(c.Path(InterKeyFile), []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	o, _ := Open(c.Dir)
	if err := o.Unlock(testPass); !errors.Is(err, ErrWrongPassphrase) {
		t.Fatalf("Unlock of altered file: %v", err)
	}
}

func TestSignRevokeList(t *testing.T) {
	c := initCA(t)
	pool := x509.NewCertPool()
	pool.AddCert(c.Root)
	inter := x509.NewCertPool()
	inter.AddCert(c.Inter)
	seen := map[string]bool{}
	for _, id := range []string{"esp32-aa", "esp32-bb", "esp32-aa"} {
		csr, k := newCSR(t, id)
		cert, err := c.Sign(csr, SignOptions{DeviceID: id})
		if err != nil {
			t.Fatal(err)
		}
		if cert.Subject.CommonName != id || !cert.PublicKey.(*ecdsa.PublicKey).Equal(&k.PublicKey) {
			t.Fatalf("cert CN %q / key mismatch", cert.Subject.CommonName)
		}
		if _, err := cert.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
			t.Fatalf("verify: %v", err)
		}
		s := serialHex(cert.SerialNumber)
		if seen[s] {
			t.Fatalf("serial %s issued twice", s)
		}
		seen[s] = true
	}
	recs, err := c.List()
	if err != nil || len(recs) != 3 {
		t.Fatalf("List: %v, %d records", err, len(recs))
	}
	if _, err := c.Revoke("0x"+strings.ToUpper(recs[1].Serial), "key compromise"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Revoke("deadbeef", ""); !errors.Is(err, ErrUnknownSerial) {
		t.Errorf("revoke unknown: %v", err)
	}
	recs, _ = c.List()
	if recs[1].Status != StatusRevoked || recs[0].Status != StatusValid {
		t.Fatalf("statuses after revoke: %+v", recs)
	}
	crl := readCRL(t, c)
	if len(crl.RevokedCertificateEntries) != 1 || serialHex(crl.RevokedCertificateEntries[0].SerialNumber) != recs[1].Serial {
		t.Fatalf("CRL entries: %+v", crl.RevokedCertificateEntries)
	}
	if err := crl.CheckSignatureFrom(c.Inter); err != nil {
		t.Fatalf("CRL not signed by the intermediate: %v", err)
	}
}

func TestSignRefuses(t *testing.T) {
	c := initCA(t)
	good, _ := newCSR(t, "dev1")
	badCN, _ := newCSR(t, "dev/1")
	rk, _ := rsa.GenerateKey(rand.Reader, 1024)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev1"}}, rk)
	rsaCSR, _ := x509.ParseCertificateRequest(der)
	tampered, _ := newCSR(t, "dev1")
	tampered.Signature[len(tampered.Signature)-3] ^= 0xff
	tests := []struct {
		name string
		csr  *x509.CertificateRequest
		id   string
		want string
	}{
		{"other device", good, "dev2", "is not the device id"},
		{"topic characters", badCN, "", "no / + #"},
		{"rsa", rsaCSR, "", "ECDSA P-256"},
		{"bad signature", tampered, "", "signature"},
	}
	locked, _ := Open(c.Dir)
	if _, err := locked.Sign(good, SignOptions{}); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("locked CA signed: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Sign(tt.csr, SignOptions{DeviceID: tt.id})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Sign: %v, want error containing %q", err, tt.want)
			}
		})
	}
}

func readCRL(t *testing.T, c *CA) *x509.RevocationList {
	t.Helper()
	data, err := os.ReadFile(c.Path(CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ParseCRL(data)
	if err != nil {
		t.Fatal(err)
	}
	return crl
}

// TestOpenSSLVerify checks issued certificates with OpenSSL, an independent
// implementation, against the chain and the CRL.
func TestOpenSSLVerify(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is not installed (Debian package openssl; .ci/run installs it)")
		}
		t.Skip("openssl is not installed (Debian package openssl)")
	}
	c := initCA(t)
	csr, _ := newCSR(t, "esp32-0001")
	cert, err := c.Sign(csr, SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	leaf := filepath.Join(t.TempDir(), "leaf.pem")
	os.WriteFile(leaf, CertPEM(cert), 0o600)
	run := func(args ...string) (string, error) {
		out, err := exec.Command(openssl, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("verify", "-CAfile", c.Path(RootCertFile), "-untrusted", c.Path(InterCertFile), "-purpose", "sslclient", leaf); err != nil || !strings.Contains(out, "OK") {
		t.Fatalf("openssl verify: %v\n%s", err, out)
	}
	if out, err := run("verify", "-CAfile", c.Path(ChainFile), "-crl_check", "-CRLfile", c.Path(CRLFile), leaf); err != nil {
		t.Fatalf("openssl verify with CRL: %v\n%s", err, out)
	}
	if _, err := c.Revoke(serialHex(cert.SerialNumber), ""); err != nil {
		t.Fatal(err)
	}
	if out, err := run("verify", "-CAfile", c.Path(ChainFile), "-crl_check", "-CRLfile", c.Path(CRLFile), leaf); err == nil || !strings.Contains(out, "revoked") {
		t.Fatalf("openssl accepted a revoked certificate: %v\n%s", err, out)
	}
}

func TestExpiredCertificateIsExpired(t *testing.T) {
	c := initCA(t)
	csr, _ := newCSR(t, "old")
	cert, err := c.Sign(csr, SignOptions{NotBefore: time.Now().Add(-48 * time.Hour), Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !cert.NotAfter.Before(time.Now()) {
		t.Fatalf("NotAfter %v is not in the past", cert.NotAfter)
	}
}
