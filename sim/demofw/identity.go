package demofw

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strconv"
	"strings"

	"github.com/mos-tool/mos/sim/atca"
)

// The device's identity: Mongoose OS's atca library (ATCA.* over the
// board's ATECC508A) and the demo's software key (Crypto.*), a P-256 key
// the firmware makes itself and keeps in its file store. Neither private
// key ever leaves the device: no method returns it, nothing logs it, and
// FS.Get refuses any file that holds a private key (isPrivateKeyFile).

// identityInit registers the identity methods, as the libraries do at
// init. ATCA.* exist only when sys.atca.enable is set and the chip
// answers on the I2C bus (mos-wire-formats: else 404).
func (fw *demoFirmware) identityInit() {
	fw.extraMethods = append(fw.extraMethods,
		rpcMethod{"Crypto.GenKey", cryptoGenKey},
		rpcMethod{"Crypto.GetPubKey", cryptoGetPubKey},
		rpcMethod{"Crypto.Sign", cryptoSign},
		rpcMethod{"MQTT.Status", mqttStatus},
	)
	if !fw.cfg.Bool("sys.atca.enable") {
		return
	}
	bus, addr := fw.cfg.Int("sys.atca.i2c_bus"), fw.cfg.Int("sys.atca.i2c_addr")
	if !fw.cfg.Bool("i2c.enable") {
		fw.logf(logError, "mgos_atca.c:70", "ATCA: I2C is disabled")
		return
	}
	chip := fw.m.CryptoChip()
	// the chip answers only at its configured 7-bit address (config byte 16
	// holds the 8-bit form)
	if chip == nil || bus != 0 || chip.Config()[16]>>1 != byte(addr) {
		// no ACK on the bus: CryptoAuthLib's ATCA_COMM_FAIL
		fw.logf(logError, "mgos_atca.c:88", "ATCA: Failed to initialize (bus %d addr 0x%02x): 0xf0", bus, addr)
		return
	}
	cfg := chip.Config()
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	fw.logf(logInfo, "mgos_atca.c:110", "ATECC508A @ %d/0x%02x: rev 0x%04x S/N 0x%x%x, zone lock status: %s, %s; ECDH slots: 0x%02x",
		bus, addr, int(cfg[6])<<8|int(cfg[7]), cfg[0:4], cfg[8:13],
		yesNo(chip.Locked(atca.ZoneConfig)), yesNo(chip.Locked(atca.ZoneData)), fw.cfg.Int("sys.atca.ecdh_slots_mask"))
	fw.atca = chip
	fw.extraMethods = append(fw.extraMethods,
		rpcMethod{"ATCA.GetConfig", atcaGetConfig},
		rpcMethod{"ATCA.SetConfig", atcaSetConfig},
		rpcMethod{"ATCA.LockZone", atcaLockZone},
		rpcMethod{"ATCA.GenKey", atcaGenKey},
		rpcMethod{"ATCA.GetPubKey", atcaGetPubKey},
		rpcMethod{"ATCA.Sign", atcaSign},
	)
}

// chipError is how the atca RPC handlers report a chip failure:
// 500 "<what>: 0xNN" with CryptoAuthLib's status (mos-wire-formats).
func chipError(what string, err error) *rpcError {
	return rpcErrorf(500, "%s: 0x%02x", what, byte(atca.StatusOf(err)))
}

func b64(p []byte) string { return base64.StdEncoding.EncodeToString(p) }

func atcaGetConfig(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	cfg := fw.atca.Config()
	return printfJSON(map[string]string{"config": b64(cfg[:])}), nil
}

func atcaSetConfig(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Config []byte `json:"config"` // base64
	}{}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	if len(p.Config) != atca.ConfigSize {
		return nil, rpcErrorf(400, "Expected %d bytes, got %d", atca.ConfigSize, len(p.Config))
	}
	if err := fw.atca.WriteConfig(p.Config); err != nil {
		return nil, chipError("Failed to set config", err)
	}
	fw.logf(logInfo, "mgos_atca_rpc.c:68", "ATCA config written")
	return nil, nil
}

func atcaLockZone(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Zone *int `json:"zone"`
	}{}
	if err := call.decodeParams(&p); err != nil {
		return nil, err
	}
	if p.Zone == nil || (*p.Zone != atca.ZoneConfig && *p.Zone != atca.ZoneData) {
		return nil, rpcErrorf(403, "Invalid zone")
	}
	if err := fw.atca.Lock(*p.Zone); err != nil {
		return nil, chipError(fmt.Sprintf("Failed to lock zone %d", *p.Zone), err)
	}
	fw.logf(logInfo, "mgos_atca_rpc.c:97", "ATCA zone %d locked", *p.Zone)
	return nil, nil
}

// slotParam reads {slot} (required, 0..15).
func slotParam(call *rpcCall, v any, slot **int) *rpcError {
	if err := call.decodeParams(v); err != nil {
		return err
	}
	if *slot == nil {
		return rpcErrorf(400, "slot is required")
	}
	if **slot < 0 || **slot >= atca.NumSlots {
		return rpcErrorf(400, "Invalid slot %d", **slot)
	}
	return nil
}

func atcaGenKey(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Slot *int `json:"slot"`
	}{}
	if err := slotParam(call, &p, &p.Slot); err != nil {
		return nil, err
	}
	pub, err := fw.atca.GenKey(*p.Slot)
	if err != nil {
		return nil, chipError(fmt.Sprintf("Failed to generate key in slot %d", *p.Slot), err)
	}
	fw.logf(logInfo, "mgos_atca_rpc.c:161", "ATCA: generated a new key in slot %d", *p.Slot)
	return printfJSON(map[string]string{"pubkey": b64(pub)}), nil
}

func atcaGetPubKey(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Slot *int `json:"slot"`
	}{}
	if err := slotParam(call, &p, &p.Slot); err != nil {
		return nil, err
	}
	pub, err := fw.atca.PublicKey(*p.Slot)
	if err != nil {
		return nil, chipError(fmt.Sprintf("Failed to get public key from slot %d", *p.Slot), err)
	}
	return printfJSON(map[string]string{"pubkey": b64(pub)}), nil
}

func atcaSign(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		Slot   *int   `json:"slot"`
		Digest []byte `json:"digest"`
	}{}
	if err := slotParam(call, &p, &p.Slot); err != nil {
		return nil, err
	}
	if len(p.Digest) != 32 {
		return nil, rpcErrorf(400, "Expected 32 bytes, got %d", len(p.Digest))
	}
	sig, err := fw.atca.Sign(*p.Slot, p.Digest)
	if err != nil {
		return nil, chipError(fmt.Sprintf("Failed to sign with slot %d", *p.Slot), err)
	}
	return printfJSON(map[string]string{"signature": b64(sig)}), nil
}

// The software key: a P-256 key in a file of the device's store, PEM
// "EC PRIVATE KEY" (SEC 1), the form mqtt.ssl_key files take in Mongoose
// OS, so that a key uploaded by a host and one made here work alike.

func (fw *demoFirmware) keyFileParam(call *rpcCall, v any, file *string) *rpcError {
	if err := call.decodeParams(v); err != nil {
		return err
	}
	if *file == "" {
		return rpcErrorf(400, "file is required")
	}
	return fw.needFS()
}

func cryptoGenKey(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		File string `json:"file"`
	}{}
	if err := fw.keyFileParam(call, &p, &p.File); err != nil {
		return nil, err
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, rpcErrorf(500, "key generation failed: %v", err)
	}
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, rpcErrorf(500, "key generation failed: %v", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	if err := fw.fs.Write(fsName(p.File), 0, data, true); err != nil {
		return nil, fsRPCError("write", p.File, err)
	}
	fw.logf(logInfo, "mgos_crypto.c:52", "Generated a P-256 key in %s", fsName(p.File))
	return printfJSON(map[string]string{"pubkey": b64(atca.RawPublicKey(&k.PublicKey))}), nil
}

// loadKeyFile reads a private key file of the store.
func (fw *demoFirmware) loadKeyFile(name string) (*ecdsa.PrivateKey, error) {
	data, err := fw.readFile(name)
	if err != nil {
		return nil, err
	}
	k, err := parsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return k, nil
}

func parsePrivateKey(data []byte) (*ecdsa.PrivateKey, error) {
	der := data
	if b, _ := pem.Decode(data); b != nil {
		der = b.Bytes
	}
	if k, err := x509.ParseECPrivateKey(der); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, errors.New("not a P-256 private key (PEM or DER, SEC 1 or PKCS #8)")
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok || ek.Curve != elliptic.P256() {
		return nil, errors.New("not a P-256 private key")
	}
	return ek, nil
}

func cryptoGetPubKey(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		File string `json:"file"`
	}{}
	if err := fw.keyFileParam(call, &p, &p.File); err != nil {
		return nil, err
	}
	k, err := fw.loadKeyFile(p.File)
	if err != nil {
		return nil, rpcErrorf(400, "%v", err)
	}
	return printfJSON(map[string]string{"pubkey": b64(atca.RawPublicKey(&k.PublicKey))}), nil
}

func cryptoSign(fw *demoFirmware, call *rpcCall) (json.RawMessage, *rpcError) {
	p := struct {
		File   string `json:"file"`
		Digest []byte `json:"digest"`
	}{}
	if err := fw.keyFileParam(call, &p, &p.File); err != nil {
		return nil, err
	}
	if len(p.Digest) != 32 {
		return nil, rpcErrorf(400, "Expected 32 bytes, got %d", len(p.Digest))
	}
	k, err := fw.loadKeyFile(p.File)
	if err != nil {
		return nil, rpcErrorf(400, "%v", err)
	}
	r, s, err := ecdsa.Sign(rand.Reader, k, p.Digest)
	if err != nil {
		return nil, rpcErrorf(500, "signing failed: %v", err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return printfJSON(map[string]string{"signature": b64(sig)}), nil
}

// maxKeyFileCheck: files up to this size are read whole by FS.Get to see
// whether they hold a private key (a key file is a few hundred bytes; a
// PEM bundle with a key and a certificate chain stays far below this).
const maxKeyFileCheck = 64 << 10

// isPrivateKeyFile reports whether a file's contents are or carry a
// private key, which FS.Get refuses to send: a key never leaves the device.
// It looks at the contents, not the name, so that renaming the file does
// not get it out.
func isPrivateKeyFile(data []byte) bool {
	if bytes.Contains(data, []byte("PRIVATE KEY-----")) {
		return true
	}
	if _, err := x509.ParseECPrivateKey(data); err == nil {
		return true
	}
	if _, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		return true
	}
	_, err := x509.ParsePKCS1PrivateKey(data)
	return err == nil
}

// keySigner is a crypto.Signer over the key mqtt.ssl_key names:
// "ATCA:<slot>" signs in the crypto chip, anything else is a key file.
func (fw *demoFirmware) keySigner(ref string) (crypto.Signer, error) {
	if rest, ok := strings.CutPrefix(ref, "ATCA:"); ok {
		slot, err := strconv.Atoi(rest)
		if err != nil || slot < 0 || slot >= atca.NumSlots {
			return nil, fmt.Errorf("bad key %q (ATCA:0..ATCA:15)", ref)
		}
		if fw.atca == nil {
			return nil, fmt.Errorf("%s: the crypto chip is not enabled (sys.atca.enable, i2c.enable)", ref)
		}
		raw, err := fw.atca.PublicKey(slot)
		if err != nil {
			return nil, err
		}
		pub, err := atca.ParsePublicKey(raw)
		if err != nil {
			return nil, err
		}
		return &chipSigner{chip: fw.atca, slot: slot, pub: pub}, nil
	}
	return fw.loadKeyFile(ref)
}

// chipSigner signs through the ATECC508A: the TLS stack hands it the
// handshake digest, the chip signs it with a key it never gives out.
type chipSigner struct {
	chip *atca.Chip
	slot int
	pub  *ecdsa.PublicKey
}

func (s *chipSigner) Public() crypto.PublicKey { return s.pub }

func (s *chipSigner) Sign(_ io.Reader, digest []byte, _ crypto.SignerOpts) ([]byte, error) {
	raw, err := s.chip.Sign(s.slot, digest)
	if err != nil {
		return nil, err
	}
	// crypto.Signer returns ECDSA signatures as ASN.1 SEQUENCE {r, s}
	return asn1.Marshal(struct{ R, S *big.Int }{new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])})
}
