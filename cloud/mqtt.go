package cloud

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mos-tool/mos/cloud/ca"
)

// MQTTOptions configure RegisterMQTT.
type MQTTOptions struct {
	Broker string // host:port the device connects to
	// CA issues the certificate; it must be unlocked unless the device is
	// already registered (then nothing is signed).
	CA     *ca.CA
	Key    KeyOptions
	Rotate bool          // issue a new certificate even if the current one is good
	Wait   time.Duration // how long to wait for the device's connection; 0: not at all
	// Status receives progress messages; nil discards them.
	Status func(string)
	// Unlock is called before the CA is first needed to sign, so a
	// passphrase is only asked for when there is something to sign.
	Unlock func() error
}

// MQTTResult is what RegisterMQTT did.
type MQTTResult struct {
	DeviceID    string     `json:"device_id"`
	Broker      string     `json:"broker"`
	KeyRef      string     `json:"key"`
	KeyOnDevice bool       `json:"key_on_device"` // false only with a host-generated key
	Serial      string     `json:"serial"`
	NotAfter    time.Time  `json:"not_after"`
	Steps       []Step     `json:"steps"`
	Connection  Connection `json:"connection"`
}

// RegisterMQTT gives the device an identity for a broker that trusts the
// fleet CA: the device makes its key (or uses the crypto chip's) and signs
// a CSR; the CA issues the certificate; certificate and CA chain are
// written to the device with mqtt.* set; the device reboots and is watched
// until it reports that it connected. A device already registered (same
// broker and key, a valid certificate from this CA on it) is left as it is
// and only its connection is checked.
func RegisterMQTT(ctx context.Context, dev Device, o MQTTOptions) (*MQTTResult, error) {
	if _, _, err := net.SplitHostPort(o.Broker); err != nil {
		return nil, fmt.Errorf("broker %q: want HOST:PORT: %w", o.Broker, err)
	}
	if o.CA == nil {
		return nil, errors.New("no fleet CA")
	}
	status := o.Status
	if status == nil {
		status = func(string) {}
	}
	o.Key = o.Key.resolved()
	ref := o.Key.Ref
	res := &MQTTResult{Broker: o.Broker, KeyRef: ref, KeyOnDevice: !o.Key.HostKey, Steps: []Step{}}
	id, err := deviceID(ctx, dev)
	if err != nil {
		return res, err
	}
	res.DeviceID = id
	if err := ca.ValidDeviceID(id); err != nil {
		return res, err
	}

	cur, err := readMQTTConfig(ctx, dev)
	if err != nil {
		return res, err
	}
	if !o.Rotate && !o.Key.NewKey && !o.Key.HostKey {
		if cert := registeredCert(ctx, dev, o.CA, cur, o.Broker, ref, id); cert != nil {
			res.Serial, res.NotAfter = cert.SerialNumber.Text(16), cert.NotAfter
			res.Steps = append(res.Steps, Step{Name: "certificate", Status: "skipped",
				Detail: fmt.Sprintf("serial %s on the device, valid until %s", res.Serial, cert.NotAfter.Format(time.DateOnly))})
			conn, err := WaitConnected(ctx, dev, o.Broker, o.Wait)
			res.Connection = conn
			return res, err
		}
	}

	csr, pub, hostKey, err := makeCSR(ctx, dev, o.Key, id, status)
	if err != nil {
		return res, err
	}
	res.Steps = append(res.Steps, Step{Name: "key", Status: "done", Detail: keyDetail(o.Key)})
	if o.Unlock != nil {
		if err := o.Unlock(); err != nil {
			return res, err
		}
	}
	cert, err := o.CA.Sign(csr, ca.SignOptions{DeviceID: id})
	if err != nil {
		return res, fmt.Errorf("fleet CA: %w", err)
	}
	if !cert.PublicKey.(*ecdsa.PublicKey).Equal(pub) {
		return res, errors.New("the issued certificate does not carry the device's key")
	}
	res.Serial, res.NotAfter = cert.SerialNumber.Text(16), cert.NotAfter
	res.Steps = append(res.Steps, Step{Name: "certificate", Status: "done", Detail: fmt.Sprintf("serial %s from the fleet CA", res.Serial)})

	files := []deviceFile{{CertFile, ca.CertPEM(cert)}, {CAFile, o.CA.ChainPEM()}}
	if hostKey != nil {
		files = append(files, deviceFile{HostKeyRef, hostKey})
	}
	values := map[string]any{
		"mqtt.enable":      true,
		"mqtt.server":      o.Broker,
		"mqtt.ssl_cert":    CertFile,
		"mqtt.ssl_key":     ref,
		"mqtt.ssl_ca_cert": CAFile,
	}
	if err := install(ctx, dev, files, values, status); err != nil {
		return res, err
	}
	res.Steps = append(res.Steps, Step{Name: "device", Status: "done", Detail: "certificate, CA chain and mqtt.* written; rebooted"})
	if o.Wait > 0 {
		status(fmt.Sprintf("waiting up to %s for the device to connect to %s", o.Wait, o.Broker))
	}
	conn, err := WaitConnected(ctx, dev, o.Broker, o.Wait)
	res.Connection = conn
	return res, err
}

func keyDetail(k KeyOptions) string {
	switch {
	case k.HostKey:
		return "generated on this computer and copied to the device (--host-key)"
	case len(k.Ref) > 5 && k.Ref[:5] == "ATCA:":
		return "in the crypto chip, slot " + k.Ref[5:] + "; only the CSR left the device"
	}
	return "made by the firmware in " + k.Ref + "; only the CSR left the device"
}

// registeredCert returns the device's certificate if the device is set up
// for this broker and key with a valid certificate of this CA for its id
// and key; else nil.
func registeredCert(ctx context.Context, dev Device, c *ca.CA, cur mqttConfig, broker, ref, id string) *x509.Certificate {
	if !cur.Enable || cur.Server != broker || cur.SSLKey != ref || cur.SSLCert == "" || cur.SSLCACert == "" {
		return nil
	}
	cert := deviceCert(ctx, dev, cur.SSLCert)
	if cert == nil || cert.Subject.CommonName != id || time.Until(cert.NotAfter) < 30*24*time.Hour {
		return nil
	}
	if cert.CheckSignatureFrom(c.Inter) != nil {
		return nil
	}
	recs, err := c.List()
	if err != nil {
		return nil
	}
	for _, r := range recs {
		if r.Serial == cert.SerialNumber.Text(16) && r.Status == ca.StatusRevoked {
			return nil
		}
	}
	pub, err := dev.PublicKey(ctx, ref)
	if err != nil || !pub.Equal(cert.PublicKey) {
		return nil
	}
	return cert
}
