//go:build !mos_identity

package main

import (
	"errors"

	"github.com/mos-tool/mos/cloud"
	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/provision"
)

// identityAvailable is false while the RPC client lacks the identity calls
// (GenerateDeviceKey, DevicePublicKey, DeviceSigner, MQTTStatus); see
// cloud_device.go.
const identityAvailable = false

func newCloudDevice(*provision.Client) (cloud.Device, error) {
	return nil, output.WithExitCode(errors.New("this build has no device identity calls (provision.Client.DeviceSigner, MQTTStatus): "+
		"cloud registration cannot talk to the device"), output.ExitFailure)
}
