package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/cloud"
	"github.com/mos-tool/mos/cloud/ca"
	"github.com/mos-tool/mos/output"
)

func newCloudCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cloud",
		Short: "Register a device with an MQTT broker (fleet CA) or AWS IoT",
		Long: "Give a device its own identity and connect it to a cloud. The device makes an\n" +
			"ECDSA P-256 key (in the crypto chip with --key ATCA:<slot>, else by the\n" +
			"firmware in its file store) and only a CSR leaves it; --host-key makes the key\n" +
			"on this computer instead, the last resort. The certificate and the mqtt.*\n" +
			"settings are written to the device, which reboots and is watched until it\n" +
			"reports that it is connected (--wait). `mos cloud mqtt` uses the fleet CA\n" +
			"(`mos ca`) and any broker that trusts it; `mos cloud aws` uses AWS IoT.",
		Example: "  mos --port /dev/ttyUSB0 cloud mqtt register --broker mqtt.example.net:8883\n" +
			"  mos --port /dev/ttyUSB0 cloud aws register --region eu-west-1 --key ATCA:0\n" +
			"  mos cloud aws deregister esp32_A1B2C3",
	}
	mq := &cobra.Command{
		Use:   "mqtt",
		Short: "Any MQTT broker that trusts the fleet CA (mos ca, mos broker, mosquitto)",
		Long: "Register a device with an MQTT broker that requires client certificates from\n" +
			"the fleet CA: `mos broker`, or mosquitto set up by `mos broker\n" +
			"mosquitto-config`. The device's certificate has CN = its device.id (which\n" +
			"must be set), and those brokers let it use only the topics under\n" +
			"devices/<CN>/.",
		Example: "  mos --port /dev/ttyUSB0 cloud mqtt register --broker 192.168.1.10:8883\n" +
			"  mos --port /dev/ttyUSB0 cloud mqtt register --broker mqtt.example.net:8883 --key ATCA:0",
	}
	mq.AddCommand(newCloudMQTTRegisterCmd(a))
	cmd.AddCommand(mq, newCloudAWSCmd(a))
	return cmd
}

// keyFlags are the flags choosing where the device key lives.
type keyFlags struct {
	ref     string
	hostKey bool
}

func (k *keyFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&k.ref, "key", "", "device key: ATCA:<slot> for the crypto chip, or a file name in the device's store (default "+cloud.DefaultKeyRef+", made by the firmware)")
	cmd.Flags().BoolVar(&k.hostKey, "host-key", false, "generate the key on THIS computer and copy it to the device (last resort: the key leaves no trace only if the device does)")
}

func (k keyFlags) check() error {
	if k.hostKey && k.ref != "" {
		return errors.New("--key names a key on the device; --host-key makes one here: give one of them")
	}
	return nil
}

func (k keyFlags) options() cloud.KeyOptions { return cloud.KeyOptions{Ref: k.ref, HostKey: k.hostKey} }

// withCloudDevice opens the device and gives f its cloud view.
func withCloudDevice(cmd *cobra.Command, a *app, o rpcOptions, f func(ctx context.Context, dev cloud.Device) error) error {
	return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
		return f(ctx, newCloudDevice(s.Client))
	})
}

// connectionErr gives a failed wait its exit code and a hint.
func connectionErr(err error, hint string) error {
	if errors.Is(err, cloud.ErrNotConnected) {
		return output.WithHint(output.WithExitCode(err, output.ExitCloud), hint)
	}
	return err
}

// writeSteps writes a registration's steps as a table, one a line.
func writeSteps(b *strings.Builder, steps []cloud.Step) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	for _, s := range steps {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, s.Status, s.Detail)
	}
	tw.Flush()
}

func connectionText(c cloud.Connection, wait time.Duration) string {
	if wait == 0 {
		return "connection: UNPROVEN (--wait 0: not checked)"
	}
	if !c.Proven {
		return "connection: NOT CONNECTED"
	}
	return fmt.Sprintf("connection: the device reports it is connected to %s as %s (after %.1f s)", c.Broker, c.ClientID, c.Seconds)
}

type mqttRegisterResult struct {
	*cloud.MQTTResult
	wait time.Duration
}

func (r mqttRegisterResult) Data() any { return r.MQTTResult }
func (r mqttRegisterResult) Text() string {
	var b strings.Builder
	writeSteps(&b, r.Steps)
	fmt.Fprintf(&b, "device %s: broker %s, key %s, certificate serial %s\n", r.DeviceID, r.Broker, r.KeyRef, r.Serial)
	b.WriteString(connectionText(r.Connection, r.wait))
	return b.String()
}

func newCloudMQTTRegisterCmd(a *app) *cobra.Command {
	var rpc rpcOptions
	var keys keyFlags
	var dir, brokerAddr string
	var rotate bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "register --broker HOST:PORT",
		Short: "Give the device a fleet certificate and connect it to an MQTT broker over mutual TLS",
		Long: "The device makes its key (or uses the crypto chip's, --key ATCA:0) and signs a\n" +
			"CSR; the fleet CA (`mos ca`) issues the certificate; certificate and CA chain\n" +
			"are written to the device with mqtt.* set; the device reboots and is watched\n" +
			"until it reports that it is connected (--wait; --wait 0 skips that, and the\n" +
			"connection stays unproven). A device already registered for this broker is left\n" +
			"as it is; --rotate issues a new certificate.",
		Example: "  mos --port /dev/ttyUSB0 cloud mqtt register --broker mqtt.example.net:8883 --key ATCA:0",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := keys.check(); err != nil {
				return usageErr(cmd, err)
			}
			if brokerAddr == "" {
				return usageErr(cmd, errors.New("--broker HOST:PORT is required"))
			}
			if wait < 0 {
				return usageErr(cmd, fmt.Errorf("--wait %s: must not be negative", wait))
			}
			c, err := openCA(dir)
			if err != nil {
				return err
			}
			return withCloudDevice(cmd, a, rpc, func(ctx context.Context, dev cloud.Device) error {
				res, err := registerMQTT(ctx, a, dev, c, brokerAddr, keys, rotate, wait)
				if err != nil {
					return err
				}
				return a.out.Print(mqttRegisterResult{res, wait})
			})
		},
	}
	rpc.addFlags(cmd, a)
	keys.add(cmd)
	caDirFlag(cmd, a, &dir)
	f := cmd.Flags()
	f.StringVar(&brokerAddr, "broker", "", "broker HOST:PORT the device connects to")
	f.BoolVar(&rotate, "rotate", false, "issue a new certificate even if the device's is valid")
	f.DurationVar(&wait, "wait", 60*time.Second, "how long to wait for the device to report its connection (0: do not wait; unproven)")
	return cmd
}

// registerMQTT runs the registration with progress, the passphrase asked
// only when something is to be signed.
func registerMQTT(ctx context.Context, a *app, dev cloud.Device, fleet *ca.CA, brokerAddr string, keys keyFlags, rotate bool, wait time.Duration) (*cloud.MQTTResult, error) {
	res, err := cloud.RegisterMQTT(ctx, dev, cloud.MQTTOptions{
		Broker: brokerAddr, CA: fleet, Key: keys.options(), Rotate: rotate, Wait: wait,
		Status: statusPrinter(a),
		Unlock: caUnlocker(a, fleet),
	})
	if err != nil {
		err = connectionErr(err, "is the broker running at "+brokerAddr+" and does it trust the fleet CA? `mos broker` runs one")
		if res != nil {
			return nil, output.WithResult(err, mqttRegisterResult{res, wait})
		}
		return nil, err
	}
	if wait == 0 {
		a.out.Warnf("--wait 0: the device's connection to %s is not checked", brokerAddr)
	}
	return res, nil
}
