package broker

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mos-tool/mos/cloud/ca"
)

// MosquittoOptions describe a mutual-TLS mosquitto listener for a fleet CA.
type MosquittoOptions struct {
	Listen   string   // host:port of the listener, e.g. 127.0.0.1:8883
	Hosts    []string // names and addresses in the server certificate; default: the listen host
	Monitors []string // certificate CNs allowed to read every device's topics (devices/#)
	// RunAsRoot adds `user root` when running as root, so mosquitto
	// keeps the rights to read files in a private directory (it drops to
	// user "mosquitto" otherwise). For tests and local work.
	RunAsRoot bool
}

// MosquittoFiles are the files WriteMosquittoConfig made.
type MosquittoFiles struct {
	Config, ACL, CAFile, CertFile, KeyFile, CRLFile string
}

// WriteMosquittoConfig writes, into dir, a mosquitto 2.0 configuration with
// one listener that requires a client certificate from the fleet CA
// (require_certificate), uses the certificate's CN as the user name
// (use_identity_as_username), lets each device read and write only
// devices/<CN>/# (ACL pattern), and checks the CA's CRL (crlfile). The
// broker's own certificate and key are issued by the CA's intermediate; c
// must be unlocked. Option names from mosquitto.conf(5), mosquitto 2.0.
//
// The CRL is copied, not referenced: mosquitto reads it at start, so after
// `mos ca revoke` the config is written again (or crl.pem copied) and
// mosquitto restarted or sent SIGHUP.
func WriteMosquittoConfig(c *ca.CA, dir string, o MosquittoOptions) (*MosquittoFiles, error) {
	host, portS, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portS)
	if err != nil || port <= 0 || port > 65535 {
		return nil, fmt.Errorf("listen address %q: bad port", o.Listen)
	}
	for _, m := range o.Monitors {
		if err := ca.ValidDeviceID(m); err != nil {
			return nil, fmt.Errorf("monitor: %w", err)
		}
	}
	hosts := o.Hosts
	if len(hosts) == 0 {
		if host == "" || host == "0.0.0.0" || host == "::" {
			return nil, errors.New("listening on all addresses: give the broker's host names for its certificate")
		}
		hosts = []string{host}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := c.IssueServer(hosts, 0)
	if err != nil {
		return nil, err
	}
	crl, err := os.ReadFile(c.Path(ca.CRLFile))
	if err != nil {
		return nil, err
	}
	f := &MosquittoFiles{
		Config:   filepath.Join(dir, "mosquitto.conf"),
		ACL:      filepath.Join(dir, "acl"),
		CAFile:   filepath.Join(dir, "ca-chain.pem"),
		CertFile: filepath.Join(dir, "server.crt"),
		KeyFile:  filepath.Join(dir, "server.key"),
		CRLFile:  filepath.Join(dir, "crl.pem"),
	}
	var acl strings.Builder
	acl.WriteString("# Each device reads and writes only below its own topic; %u is the\n")
	acl.WriteString("# user name, which use_identity_as_username makes the certificate CN.\n")
	acl.WriteString("pattern readwrite devices/%u/#\n")
	for _, m := range o.Monitors {
		fmt.Fprintf(&acl, "\nuser %s\ntopic read devices/#\n", m)
	}
	var conf strings.Builder
	conf.WriteString("# Written by mos broker mosquitto-config for a fleet CA.\n")
	if o.RunAsRoot {
		conf.WriteString("user root\n")
	}
	conf.WriteString("persistence false\n")
	conf.WriteString("acl_file " + f.ACL + "\n")
	fmt.Fprintf(&conf, "\nlistener %d %s\n", port, host)
	conf.WriteString("protocol mqtt\n")
	conf.WriteString("cafile " + f.CAFile + "\n")
	conf.WriteString("certfile " + f.CertFile + "\n")
	conf.WriteString("keyfile " + f.KeyFile + "\n")
	conf.WriteString("crlfile " + f.CRLFile + "\n")
	conf.WriteString("require_certificate true\n")
	conf.WriteString("use_identity_as_username true\n")
	conf.WriteString("tls_version tlsv1.2\n")
	for _, w := range []struct {
		path string
		data []byte
	}{
		{f.CAFile, c.ChainPEM()},
		{f.CertFile, certPEM},
		{f.KeyFile, keyPEM},
		{f.CRLFile, crl},
		{f.ACL, []byte(acl.String())},
		{f.Config, []byte(conf.String())},
	} {
		if err := os.WriteFile(w.path, w.data, 0o600); err != nil {
			return nil, err
		}
		if err := os.Chmod(w.path, 0o600); err != nil {
			return nil, err
		}
	}
	return f, nil
}
