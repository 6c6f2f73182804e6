package provision

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"
)

// The device's identity as the host reaches it: a P-256 key made on the
// device, in its ATECC508A crypto chip (ATCA.*, Mongoose OS's atca
// library) or in its file store (Crypto.*, the demo firmware's software
// key), which signs over RPC and never leaves the device; and the state
// of its MQTT connection.
//
// Wire formats: ATCA.GenKey / ATCA.GetPubKey {slot} and Crypto.GenKey /
// Crypto.GetPubKey {file} -> {"pubkey": base64 of X||Y, 64 bytes};
// ATCA.Sign {slot, digest} and Crypto.Sign {file, digest} (digest: base64,
// 32 bytes) -> {"signature": base64 of R||S, 64 bytes}.

// Reading a public key or the MQTT state changes nothing on the device,
// so a call whose reply was lost is sent again (see retried in call.go).
func init() {
	retried["Crypto.GetPubKey"] = true
	retried["MQTT.Status"] = true
}

// KeyRef names a device key: "ATCA:<slot>" for the crypto chip, or a file
// name in the device's file store.
type KeyRef string

// ATCASlot returns the slot of an "ATCA:<slot>" reference.
func (r KeyRef) ATCASlot() (slot int, ok bool, err error) {
	rest, isATCA := strings.CutPrefix(string(r), "ATCA:")
	if !isATCA {
		return 0, false, nil
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 || n > 15 {
		return 0, true, fmt.Errorf("bad key %q: a crypto chip key is ATCA:0 .. ATCA:15", string(r))
	}
	return n, true, nil
}

// keyCall is the method and parameters that reach the key ref names.
func (r KeyRef) keyCall(op string) (method string, params map[string]any, err error) {
	slot, isATCA, err := r.ATCASlot()
	switch {
	case err != nil:
		return "", nil, err
	case isATCA:
		return "ATCA." + op, map[string]any{"slot": slot}, nil
	case r == "":
		return "", nil, errors.New("no device key named (ATCA:<slot> or a file name)")
	}
	return "Crypto." + op, map[string]any{"file": string(r)}, nil
}

// GenerateDeviceKey makes a new key on the device (replacing what ref
// held) and returns its public key.
func (c *Client) GenerateDeviceKey(ctx context.Context, ref KeyRef) (*ecdsa.PublicKey, error) {
	return c.pubKeyCall(ctx, ref, "GenKey")
}

// DevicePublicKey reads the public key of the device key ref.
func (c *Client) DevicePublicKey(ctx context.Context, ref KeyRef) (*ecdsa.PublicKey, error) {
	return c.pubKeyCall(ctx, ref, "GetPubKey")
}

func (c *Client) pubKeyCall(ctx context.Context, ref KeyRef, op string) (*ecdsa.PublicKey, error) {
	method, params, err := ref.keyCall(op)
	if err != nil {
		return nil, err
	}
	var res struct {
		PubKey []byte `json:"pubkey"` // base64 in the JSON
	}
	if err := c.Call(ctx, method, params, &res); err != nil {
		return nil, err
	}
	pub, err := parseRawP256(res.PubKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return pub, nil
}

// parseRawP256 reads a 64-byte X||Y public key.
func parseRawP256(raw []byte) (*ecdsa.PublicKey, error) {
	if len(raw) != 64 {
		return nil, fmt.Errorf("the device sent a %d-byte public key, want 64 (X||Y)", len(raw))
	}
	x, y := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
	if !elliptic.P256().IsOnCurve(x, y) {
		return nil, errors.New("the device's public key is not a point on P-256")
	}
	return &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, nil
}

// DeviceSigner returns a crypto.Signer whose Sign goes over RPC to the
// device key ref; Public is that key. It signs SHA-256 digests (32
// bytes), which is what x509.CreateCertificateRequest gives a P-256 key.
// Its calls run under ctx (crypto.Signer has no context of its own), so
// the signer is for use while ctx lasts.
func (c *Client) DeviceSigner(ctx context.Context, ref KeyRef) (crypto.Signer, error) {
	method, params, err := ref.keyCall("Sign")
	if err != nil {
		return nil, err
	}
	pub, err := c.DevicePublicKey(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &deviceSigner{c: c, ctx: ctx, method: method, params: params, pub: pub}, nil
}

type deviceSigner struct {
	c      *Client
	ctx    context.Context
	method string
	params map[string]any
	pub    *ecdsa.PublicKey
}

func (s *deviceSigner) Public() crypto.PublicKey { return s.pub }

// Sign asks the device to sign digest and returns the signature in the
// ASN.1 form crypto.Signer promises for ECDSA. The signature is checked
// against the device's public key before it is returned.
func (s *deviceSigner) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts != nil && opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("the device signs SHA-256 digests only, not %v", opts.HashFunc())
	}
	if len(digest) != 32 {
		return nil, fmt.Errorf("the device signs 32-byte digests, got %d bytes", len(digest))
	}
	params := map[string]any{"digest": digest}
	for k, v := range s.params {
		params[k] = v
	}
	var res struct {
		Signature []byte `json:"signature"`
	}
	if err := s.c.Call(s.ctx, s.method, params, &res); err != nil {
		return nil, err
	}
	if len(res.Signature) != 64 {
		return nil, fmt.Errorf("%s: the device sent a %d-byte signature, want 64 (R||S)", s.method, len(res.Signature))
	}
	r, ss := new(big.Int).SetBytes(res.Signature[:32]), new(big.Int).SetBytes(res.Signature[32:])
	if !ecdsa.Verify(s.pub, digest, r, ss) {
		return nil, fmt.Errorf("%s: the device's signature does not verify with its public key", s.method)
	}
	return asn1.Marshal(struct{ R, S *big.Int }{r, ss})
}

// MQTTStatus is the device's MQTT connection as MQTT.Status reports it.
type MQTTStatus struct {
	Connected bool   `json:"connected"`
	Broker    string `json:"broker"`
	ClientID  string `json:"client_id"`
	LastError string `json:"last_error"`
}

// MQTTStatus reads the state of the device's MQTT connection.
func (c *Client) MQTTStatus(ctx context.Context) (MQTTStatus, error) {
	var res MQTTStatus
	if err := c.Call(ctx, "MQTT.Status", nil, &res); err != nil {
		return MQTTStatus{}, err
	}
	return res, nil
}

// ATCA configuration zone bytes that say whether a zone is locked
// (mos-wire-formats: 86 LockValue, data zone; 87 LockConfig; 0x55
// unlocked, 0x00 locked).
const (
	atcaLockValue  = 86
	atcaLockConfig = 87
	atcaUnlocked   = 0x55
)

// ATCAConfig reads the crypto chip's 128-byte configuration zone and
// whether its zones are locked.
func (c *Client) ATCAConfig(ctx context.Context) (config []byte, configLocked, dataLocked bool, err error) {
	var res struct {
		Config []byte `json:"config"`
	}
	if err := c.Call(ctx, "ATCA.GetConfig", nil, &res); err != nil {
		return nil, false, false, err
	}
	if len(res.Config) != 128 {
		return nil, false, false, fmt.Errorf("ATCA.GetConfig: the device sent %d bytes, want 128", len(res.Config))
	}
	return res.Config, res.Config[atcaLockConfig] != atcaUnlocked, res.Config[atcaLockValue] != atcaUnlocked, nil
}

// ATCASetConfig writes the crypto chip's configuration zone (128 bytes;
// the chip keeps its read-only bytes). Refused once the zone is locked.
func (c *Client) ATCASetConfig(ctx context.Context, config []byte) error {
	if len(config) != 128 {
		return fmt.Errorf("an ATCA configuration is 128 bytes, got %d", len(config))
	}
	return c.Call(ctx, "ATCA.SetConfig", map[string]any{"config": config}, nil)
}

// ATCA zones as ATCA.LockZone takes them.
const (
	ATCAZoneConfig = 0
	ATCAZoneData   = 1
)

// ATCALockZone locks a zone of the crypto chip for ever (0 config, 1 data).
func (c *Client) ATCALockZone(ctx context.Context, zone int) error {
	if zone != ATCAZoneConfig && zone != ATCAZoneData {
		return fmt.Errorf("bad zone %d: 0 is the config zone, 1 the data zone", zone)
	}
	return c.Call(ctx, "ATCA.LockZone", map[string]any{"zone": zone}, nil)
}
