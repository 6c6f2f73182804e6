package cloud

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mos-tool/mos/provision"
)

// Files the registration writes on the device.
const (
	CertFile   = "mqtt.crt"    // the device certificate
	CAFile     = "mqtt-ca.pem" // what the device trusts for the broker
	HostKeyRef = "mqtt.key"    // a host-generated key, only with HostKey
	// DefaultKeyRef is the key the firmware makes and keeps in its file
	// store when no crypto chip is named.
	DefaultKeyRef = "device.key"
)

// KeyOptions choose where the device key lives.
type KeyOptions struct {
	// Ref is "ATCA:<slot>" or a device file name (default DefaultKeyRef).
	Ref string
	// HostKey generates the key on this computer and copies it to the
	// device: the last fallback for firmware that cannot make its own key.
	// The key then exists outside the device for a moment.
	HostKey bool
	// NewKey makes a new key even if the device has one (rotation).
	NewKey bool
}

// resolved returns o with Ref naming the key the device will use: the
// host key's file with HostKey, else Ref or DefaultKeyRef.
func (o KeyOptions) resolved() KeyOptions {
	if o.HostKey {
		o.Ref = HostKeyRef
	} else if o.Ref == "" {
		o.Ref = DefaultKeyRef
	}
	return o
}

// Step is one thing a registration did or found done.
type Step struct {
	Name   string `json:"step"`
	Status string `json:"status"` // done, skipped
	Detail string `json:"detail,omitempty"`
}

// Connection is the device's own report at the end of a registration.
type Connection struct {
	// Proven is true when the device reported it connected to the broker.
	Proven    bool    `json:"proven"`
	Broker    string  `json:"broker,omitempty"`
	ClientID  string  `json:"client_id,omitempty"`
	LastError string  `json:"last_error,omitempty"`
	Seconds   float64 `json:"seconds"`
}

// ErrNotConnected is returned when the device did not report a connection
// within the wait.
var ErrNotConnected = errors.New("the device did not report an MQTT connection")

// deviceID reads device.id, the CN and client id of the device.
func deviceID(ctx context.Context, dev Device) (string, error) {
	raw, err := dev.ConfigGet(ctx, "device.id")
	if err != nil {
		return "", fmt.Errorf("reading device.id: %w", err)
	}
	var id string
	if err := json.Unmarshal(raw, &id); err != nil || id == "" {
		return "", fmt.Errorf("device.id is %s: set it first (mos config set device.id=...)", raw)
	}
	return id, nil
}

// mqttConfig is the part of the device's tree registration looks at.
type mqttConfig struct {
	Enable    bool   `json:"enable"`
	Server    string `json:"server"`
	SSLCert   string `json:"ssl_cert"`
	SSLKey    string `json:"ssl_key"`
	SSLCACert string `json:"ssl_ca_cert"`
}

func readMQTTConfig(ctx context.Context, dev Device) (mqttConfig, error) {
	var m mqttConfig
	raw, err := dev.ConfigGet(ctx, "mqtt")
	if err != nil {
		return m, fmt.Errorf("reading the mqtt settings: %w", err)
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("mqtt settings: %w", err)
	}
	return m, nil
}

// deviceCert reads and parses the certificate file on the device; nil if
// there is none.
func deviceCert(ctx context.Context, dev Device, name string) *x509.Certificate {
	if name == "" {
		return nil
	}
	data, err := dev.Get(ctx, name, nil)
	if err != nil {
		return nil
	}
	c, err := parsePEMCert(string(data))
	if err != nil {
		return nil
	}
	return c
}

// makeCSR has the device make (or reuse) its key and sign a CSR with
// CN = id. With HostKey the key is made here instead and its PEM returned
// for the caller to write to the device.
func makeCSR(ctx context.Context, dev Device, o KeyOptions, id string, status func(string)) (csr *x509.CertificateRequest, pub *ecdsa.PublicKey, hostKeyPEM []byte, err error) {
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: id}}
	if o.HostKey {
		status("WARNING: generating the device key on this computer (--host-key): it exists outside the device until it is written there")
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, nil, nil, err
		}
		der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, k)
		if err != nil {
			return nil, nil, nil, err
		}
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			return nil, nil, nil, err
		}
		kd, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, nil, nil, err
		}
		return csr, &k.PublicKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), nil
	}
	ref := o.Ref
	if !o.NewKey {
		pub, err = dev.PublicKey(ctx, ref)
		if err == nil {
			status(fmt.Sprintf("using the device's key %s", ref))
		}
	}
	if pub == nil {
		status(fmt.Sprintf("device generates its key %s", ref))
		if pub, err = dev.GenerateKey(ctx, ref); err != nil {
			if strings.HasPrefix(ref, "ATCA:") {
				// The chip refuses GenKey until its config zone is locked.
				return nil, nil, nil, fmt.Errorf("generating the device key in the crypto chip (%s): %w; the chip must be configured and its config zone locked first (mos atca)", ref, err)
			}
			return nil, nil, nil, fmt.Errorf("generating the device key %s: %w", ref, err)
		}
	}
	signer, err := dev.Signer(ctx, ref)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("device signer %s: %w", ref, err)
	}
	if sp, ok := signer.Public().(*ecdsa.PublicKey); !ok || !sp.Equal(pub) {
		return nil, nil, nil, fmt.Errorf("the device's signer for %s does not hold the key it reported", ref)
	}
	status("device signs the certificate request")
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("CSR signed by the device: %w", err)
	}
	csr, err = x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, nil, fmt.Errorf("the device's CSR signature does not verify: %w", err)
	}
	return csr, pub, nil, nil
}

// install writes the files and the settings and reboots the device so its
// MQTT client starts with them. ConfigSet reboots when a setting changed;
// otherwise (new certificate, same settings) it is rebooted here.
func install(ctx context.Context, dev Device, files []deviceFile, values map[string]any, status func(string)) error {
	for _, f := range files {
		status(fmt.Sprintf("writing %s to the device", f.name))
		if err := dev.Put(ctx, f.name, f.data, nil); err != nil {
			return fmt.Errorf("writing %s to the device: %w", f.name, err)
		}
	}
	status("setting " + strings.Join(sortedKeys(values), ", "))
	r, err := dev.ConfigSet(ctx, values, provision.SetOptions{Save: true, Reboot: true})
	if err != nil {
		return fmt.Errorf("setting the MQTT settings: %w", err)
	}
	if !r.Rebooted {
		status("rebooting the device")
		if err := dev.Reboot(ctx); err != nil {
			return fmt.Errorf("rebooting the device: %w", err)
		}
	}
	return nil
}

type deviceFile struct {
	name string
	data []byte
}

// WaitConnected polls the device until it reports a connection to broker
// (host:port), or wait elapses. wait == 0 returns at once, unproven.
func WaitConnected(ctx context.Context, dev Device, broker string, wait time.Duration) (Connection, error) {
	if wait == 0 {
		return Connection{}, nil
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var last MQTTStatus
	var lastErr error
	for {
		st, err := dev.MQTTStatus(ctx)
		if err == nil {
			last = st
			if st.Connected && (broker == "" || st.Broker == broker) {
				return Connection{Proven: true, Broker: st.Broker, ClientID: st.ClientID, Seconds: time.Since(start).Seconds()}, nil
			}
		} else {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			c := Connection{Broker: last.Broker, ClientID: last.ClientID, LastError: last.LastError, Seconds: time.Since(start).Seconds()}
			why := last.LastError
			if why == "" && lastErr != nil {
				why = lastErr.Error()
			}
			if why == "" {
				why = "no error reported"
			}
			return c, fmt.Errorf("%w to %s within %s (device says: %s)", ErrNotConnected, broker, wait, why)
		case <-tick.C:
		}
	}
}

func sortedKeys(m map[string]any) []string { return slices.Sorted(maps.Keys(m)) }
