package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/cloud"
	"github.com/mos-tool/mos/provision"
)

// provisionCloudOptions are `mos provision`'s identity and cloud flags.
type provisionCloudOptions struct {
	kind   string // "", "mqtt", "aws"
	broker string
	caDir  string
	keys   keyFlags
	aws    awsFlags
	thing  string
	wait   time.Duration
}

func (c *provisionCloudOptions) addFlags(cmd *cobra.Command, a *app) {
	f := cmd.Flags()
	f.StringVar(&c.kind, "cloud", "", "register the device: mqtt (a broker trusting the fleet CA, with --broker) or aws (AWS IoT)")
	f.StringVar(&c.broker, "broker", "", "with --cloud mqtt: broker HOST:PORT")
	f.StringVar(&c.thing, "thing", "", "with --cloud aws: thing name (default: device.id)")
	f.DurationVar(&c.wait, "cloud-wait", 60*time.Second, "how long to wait for the device to report its cloud connection (0: unproven)")
	caDirFlag(cmd, a, &c.caDir)
	c.keys.add(cmd)
	c.aws.add(cmd, a)
}

func (c *provisionCloudOptions) check(cmd *cobra.Command) error {
	switch c.kind {
	case "":
		for _, fl := range []string{"broker", "key", "host-key", "thing", "region", "endpoint-url"} {
			if cmd.Flags().Changed(fl) {
				return fmt.Errorf("--%s needs --cloud", fl)
			}
		}
	case "mqtt":
		if c.broker == "" {
			return errors.New("--cloud mqtt needs --broker HOST:PORT")
		}
	case "aws":
		if c.broker != "" {
			return errors.New("--broker is for --cloud mqtt; AWS IoT's endpoint is found with DescribeEndpoint")
		}
	default:
		return fmt.Errorf("--cloud %q: want mqtt or aws", c.kind)
	}
	if c.wait < 0 {
		return fmt.Errorf("--cloud-wait %s: must not be negative", c.wait)
	}
	return c.keys.check()
}

// provisionCloud is the provisioning step that registers the device; a
// device already registered is reported as skipped.
func provisionCloud(ctx context.Context, a *app, client *provision.Client, c provisionCloudOptions) (string, string, error) {
	dev := newCloudDevice(client)
	var steps []cloud.Step
	var conn cloud.Connection
	var what string
	switch c.kind {
	case "mqtt":
		fleet, err := openCA(c.caDir)
		if err != nil {
			return "", "", err
		}
		res, err := registerMQTT(ctx, a, dev, fleet, c.broker, c.keys, false, c.wait)
		if err != nil {
			return "", "", err
		}
		steps, conn, what = res.Steps, res.Connection, fmt.Sprintf("broker %s, certificate %s", res.Broker, res.Serial)
	case "aws":
		o, err := c.aws.options(ctx)
		if err != nil {
			return "", "", err
		}
		o.Thing, o.Key, o.Wait, o.Status = c.thing, c.keys.options(), c.wait, statusPrinter(a)
		res, err := cloud.RegisterAWS(ctx, dev, o)
		if err != nil {
			return "", "", awsCmdErr(connectionErr(err, "the device's last error says why"))
		}
		steps, conn, what = res.Steps, res.Connection, fmt.Sprintf("AWS IoT thing %s, %d AWS calls", res.Thing, len(res.Calls))
	}
	detail := what + "; " + connectionText(conn, c.wait)
	if len(steps) > 0 && steps[0].Name == "certificate" && steps[0].Status == "skipped" {
		return "skipped", "already registered: " + detail, nil
	}
	return "done", detail, nil
}
