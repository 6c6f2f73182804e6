// Adapter from the RPC client's identity calls (provision/identity.go) to
// cloud.Device.

package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"

	"github.com/mos-tool/mos/cloud"
	"github.com/mos-tool/mos/provision"
)

type cloudDevice struct{ *provision.Client }

func newCloudDevice(c *provision.Client) cloud.Device { return cloudDevice{c} }

func (d cloudDevice) GenerateKey(ctx context.Context, ref string) (*ecdsa.PublicKey, error) {
	return d.Client.GenerateDeviceKey(ctx, provision.KeyRef(ref))
}

func (d cloudDevice) PublicKey(ctx context.Context, ref string) (*ecdsa.PublicKey, error) {
	return d.Client.DevicePublicKey(ctx, provision.KeyRef(ref))
}

func (d cloudDevice) Signer(ctx context.Context, ref string) (crypto.Signer, error) {
	return d.Client.DeviceSigner(ctx, provision.KeyRef(ref))
}
