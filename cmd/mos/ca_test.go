package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mos-tool/mos/output"
)

func TestCACommands(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ca")
	good := mos{env: map[string]string{"MOS_CA_PASSPHRASE": "s3cret pass", "MOS_CA_DIR": dir}}
	if r := good.run(t, "ca", "init"); r.code != 0 {
		t.Fatalf("init: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := good.run(t, "ca", "init"); r.code != output.ExitUsage || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second init: exit %d\n%s", r.code, r.stderr)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "esp32-00aa"}}, k)
	csr := filepath.Join(t.TempDir(), "dev.csr")
	os.WriteFile(csr, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o600)
	out := filepath.Join(t.TempDir(), "dev.crt")

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		code     int
		contains string
	}{
		{"wrong passphrase", map[string]string{"MOS_CA_PASSPHRASE": "nope", "MOS_CA_DIR": dir}, []string{"ca", "sign", csr}, output.ExitCloud, "wrong CA passphrase"},
		{"no passphrase, no terminal", map[string]string{"MOS_CA_DIR": dir}, []string{"ca", "sign", csr}, output.ExitUsage, "MOS_CA_PASSPHRASE"},
		{"other device id", good.env, []string{"ca", "sign", csr, "--device-id", "esp32-00bb"}, output.ExitBadInput, "is not the device id"},
		{"no CA", map[string]string{"MOS_CA_PASSPHRASE": "x", "MOS_CA_DIR": t.TempDir()}, []string{"ca", "list"}, output.ExitUsage, "mos ca init"},
		{"sign", good.env, []string{"ca", "sign", csr, "-o", out}, 0, "esp32-00aa"},
		{"list", good.env, []string{"ca", "list"}, 0, "esp32-00aa"},
		{"mosquitto config", good.env, []string{"broker", "mosquitto-config", "--out", filepath.Join(t.TempDir(), "mq")}, 0, "mosquitto -c "},
		{"mosquitto config on every address", good.env, []string{"broker", "mosquitto-config", "--out", t.TempDir(), "--listen", "0.0.0.0:8883"}, output.ExitUsage, "--host"},
		{"revoke unknown", good.env, []string{"ca", "revoke", "abcdef"}, output.ExitUsage, "no certificate with this serial"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{env: tt.env}.run(t, tt.args...)
			if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.contains) {
				t.Fatalf("exit %d (want %d), output lacks %q:\n%s%s", r.code, tt.code, tt.contains, r.stdout, r.stderr)
			}
		})
	}
	// Revoke what was signed: the list and the CRL show it.
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	cert, _ := x509.ParseCertificate(b.Bytes)
	if r := good.run(t, "ca", "revoke", cert.SerialNumber.Text(16)); r.code != 0 {
		t.Fatalf("revoke: %d %s", r.code, r.stderr)
	}
	r := good.run(t, "ca", "list", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"status": "revoked"`) {
		t.Fatalf("list after revoke: %s", r.stdout)
	}
}
