package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/cloud"
	"github.com/mos-tool/mos/output"
)

// awsFlags are the flags locating the AWS account, as the AWS CLI names them.
type awsFlags struct {
	region, endpoint, stateDir, policy string
}

func (f *awsFlags) add(cmd *cobra.Command, a *app) {
	fl := cmd.Flags()
	fl.StringVar(&f.region, "region", "", "AWS region (default: AWS_REGION or the profile's)")
	fl.StringVar(&f.endpoint, "endpoint-url", "", "AWS IoT control-plane endpoint, as the AWS CLI's (default: AWS_ENDPOINT_URL_IOT, AWS_ENDPOINT_URL, then AWS's)")
	fl.StringVar(&f.policy, "policy", cloud.DefaultPolicyName, "IoT policy shared by the devices (created if missing, least privilege)")
	def := a.getenv("MOS_AWS_STATE_DIR")
	if def == "" {
		if h, err := os.UserHomeDir(); err == nil {
			def = filepath.Join(h, ".mos", "aws")
		}
	}
	fl.StringVar(&f.stateDir, "state-dir", def, "where mos records what it created in AWS, for deregister (env MOS_AWS_STATE_DIR)")
}

func (f awsFlags) options(ctx context.Context) (cloud.AWSOptions, error) {
	cl, err := cloud.NewIoTClient(ctx, cloud.AWSClientOptions{Region: f.region, EndpointURL: f.endpoint})
	if err != nil {
		return cloud.AWSOptions{}, awsCmdErr(err)
	}
	return cloud.AWSOptions{Client: cl, PolicyName: f.policy, StateDir: f.stateDir}, nil
}

// awsCmdErr gives AWS failures exit code 13 and their hint.
func awsCmdErr(err error) error {
	var ce *cloud.CloudError
	if errors.As(err, &ce) {
		err = output.WithExitCode(err, output.ExitCloud)
		if ce.Hint != "" {
			err = output.WithHint(err, ce.Hint)
		}
	}
	return err
}

func newCloudAWSCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "aws",
		Short: "AWS IoT: register a device as a thing, deregister it",
		Long: "Register a device with AWS IoT as a thing with its own certificate and a\n" +
			"least-privilege policy, or undo that. Credentials come from the AWS SDK's\n" +
			"standard chain (environment, profile, ...); --region and --endpoint-url as\n" +
			"the AWS CLI's. What mos creates is recorded in --state-dir (default\n" +
			"~/.mos/aws), so that deregister removes that and nothing else.",
		Example: "  mos --port /dev/ttyUSB0 cloud aws register --region eu-west-1\n" +
			"  mos cloud aws deregister esp32_A1B2C3 --region eu-west-1",
	}
	cmd.AddCommand(newAWSRegisterCmd(a, "register"), newAWSDeregisterCmd(a))
	return cmd
}

// newAWSIoTSetupCmd is the original mos's name for the same command.
func newAWSIoTSetupCmd(a *app) *cobra.Command {
	c := newAWSRegisterCmd(a, "aws-iot-setup")
	c.Short = "Same as mos cloud aws register (the original mos's name)"
	c.Long = "The original mos's name for `mos cloud aws register`, with the same flags.\n\n" + c.Long
	c.Example = "  mos --port /dev/ttyUSB0 aws-iot-setup --region eu-west-1"
	return c
}

type awsRegisterResult struct {
	*cloud.AWSResult
	wait time.Duration
}

func (r awsRegisterResult) Data() any { return r.AWSResult }
func (r awsRegisterResult) Text() string {
	var b strings.Builder
	writeSteps(&b, r.Steps)
	fmt.Fprintf(&b, "thing %s, endpoint %s, policy %s, key %s\n", r.Thing, r.Endpoint, r.Policy, r.KeyRef)
	fmt.Fprintf(&b, "%d AWS calls: %s\n", len(r.Calls), strings.Join(r.Calls, ", "))
	b.WriteString(connectionText(r.Connection, r.wait))
	return b.String()
}

func newAWSRegisterCmd(a *app, use string) *cobra.Command {
	var rpc rpcOptions
	var keys keyFlags
	var af awsFlags
	var thing, thingType, group string
	var attrs []string
	var rotate bool
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   use,
		Short: "Register the device with AWS IoT: its own key, a certificate, a thing, a least-privilege policy",
		Long: "The device makes its key (--key ATCA:0 for the crypto chip) and signs a CSR; AWS\n" +
			"issues the certificate (CreateCertificateFromCsr); a policy letting each device\n" +
			"connect as its own thing and use only its own topics and shadow is created once\n" +
			"and attached; the thing is created and the certificate attached to it;\n" +
			"certificate and Amazon Root CA 1 go to the device with mqtt.* and\n" +
			"aws.thing_name; it reboots and is watched until it reports its connection. A\n" +
			"re-run that finds it registered makes only read calls. --rotate moves the device\n" +
			"to a new certificate and then deactivates the old one. Credentials: the AWS\n" +
			"SDK's standard chain.",
		Example: "  mos --port /dev/ttyUSB0 cloud aws register --region eu-west-1 --key ATCA:0",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := keys.check(); err != nil {
				return usageErr(cmd, err)
			}
			if wait < 0 {
				return usageErr(cmd, fmt.Errorf("--wait %s: must not be negative", wait))
			}
			attributes := map[string]string{}
			for _, kv := range attrs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return usageErr(cmd, fmt.Errorf("--attr %q: want KEY=VALUE", kv))
				}
				attributes[k] = v
			}
			o, err := af.options(cmd.Context())
			if err != nil {
				return err
			}
			o.Thing, o.ThingType, o.ThingGroup, o.Attributes = thing, thingType, group, attributes
			o.Key, o.Rotate, o.Wait = keys.options(), rotate, wait
			o.Status = statusPrinter(a)
			return withCloudDevice(cmd, a, rpc, func(ctx context.Context, dev cloud.Device) error {
				res, err := cloud.RegisterAWS(ctx, dev, o)
				if err != nil {
					err = awsCmdErr(connectionErr(err, "the device's last error says why; check its Wi-Fi and that the thing's certificate is ACTIVE"))
					return output.WithResult(err, awsRegisterResult{res, wait})
				}
				if wait == 0 {
					a.out.Warnf("--wait 0: the device's connection to AWS IoT is not checked")
				}
				return a.out.Print(awsRegisterResult{res, wait})
			})
		},
	}
	rpc.addFlags(cmd, a)
	keys.add(cmd)
	af.add(cmd, a)
	f := cmd.Flags()
	f.StringVar(&thing, "thing", "", "thing name (default: the device's device.id)")
	f.StringVar(&thingType, "thing-type", "", "thing type (must exist)")
	f.StringVar(&group, "thing-group", "", "thing group to add the thing to (must exist)")
	f.StringArrayVar(&attrs, "attr", nil, "thing attribute KEY=VALUE (repeatable)")
	f.BoolVar(&rotate, "rotate", false, "issue a new certificate, move the device to it, then deactivate the old one")
	f.DurationVar(&wait, "wait", 60*time.Second, "how long to wait for the device to report its connection (0: do not wait; unproven)")
	return cmd
}

func statusPrinter(a *app) func(string) {
	return func(s string) {
		if w, ok := strings.CutPrefix(s, "WARNING: "); ok {
			a.out.Warnf("%s", w)
			return
		}
		a.out.Infof("%s", s)
	}
}

type awsDeregisterResult struct{ *cloud.DeregisterResult }

func (r awsDeregisterResult) Data() any { return r.DeregisterResult }
func (r awsDeregisterResult) Text() string {
	var b strings.Builder
	for _, u := range r.Undone {
		fmt.Fprintf(&b, "undone: %s\n", u)
	}
	for _, l := range r.Left {
		fmt.Fprintf(&b, "left:   %s\n", l)
	}
	fmt.Fprintf(&b, "%d AWS calls", len(r.Calls))
	return b.String()
}

func newAWSDeregisterCmd(a *app) *cobra.Command {
	var af awsFlags
	cmd := &cobra.Command{
		Use:   "deregister THING",
		Short: "Undo what mos cloud aws register created for a thing, and nothing else",
		Long: "Detaches, deactivates and deletes the certificates mos created for the thing;\n" +
			"deletes the thing if mos created it, and the policy if mos created it and\n" +
			"nothing else uses it. What existed before is left, and listed. The device is not\n" +
			"needed.",
		Example: "  mos cloud aws deregister esp32_A1B2C3 --region eu-west-1\n" +
			"  mos cloud aws deregister esp32_A1B2C3 --state-dir ./aws-state",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			o, err := af.options(cmd.Context())
			if err != nil {
				return err
			}
			res, err := cloud.DeregisterAWS(cmd.Context(), args[0], o)
			if err != nil {
				return output.WithResult(awsCmdErr(err), awsDeregisterResult{res})
			}
			return a.out.Print(awsDeregisterResult{res})
		},
	}
	af.add(cmd, a)
	return cmd
}
