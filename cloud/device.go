package cloud

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"encoding/json"

	"github.com/mos-tool/mos/provision"
)

// MQTTStatus is the device's MQTT connection state, as its firmware reports
// it: the RPC client's own type, so the client is a Device as it is.
type MQTTStatus = provision.MQTTStatus

// Device is what registration needs from a device: the RPC client's
// configuration, file and reboot calls, and its identity calls. A key
// reference is "ATCA:<slot>" for the crypto chip or a file name on the
// device for a key the firmware keeps in its file store; either way the
// private key stays on the device and only public keys and signatures come
// back.
type Device interface {
	ConfigGet(ctx context.Context, key string) (json.RawMessage, error)
	ConfigSet(ctx context.Context, values map[string]any, o provision.SetOptions) (*provision.SetResult, error)
	Put(ctx context.Context, name string, data []byte, progress provision.Progress) error
	Get(ctx context.Context, name string, progress provision.Progress) ([]byte, error)
	Reboot(ctx context.Context) error

	GenerateKey(ctx context.Context, ref string) (*ecdsa.PublicKey, error)
	PublicKey(ctx context.Context, ref string) (*ecdsa.PublicKey, error)
	// Signer signs over RPC with the device's key.
	Signer(ctx context.Context, ref string) (crypto.Signer, error)
	MQTTStatus(ctx context.Context) (MQTTStatus, error)
}
