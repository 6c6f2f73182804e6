package main

import (
	"fmt"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/cloud/broker"
	"github.com/mos-tool/mos/output"
)

func newBrokerCmd(a *app) *cobra.Command {
	var dir, listen string
	var hosts, monitors []string
	cmd := &cobra.Command{
		Use:   "broker",
		Short: "Run an MQTT broker with mutual TLS for the fleet CA (demo and local work)",
		Long: "An embedded MQTT broker (mochi-mqtt) for local work and the demo. Clients\n" +
			"must present a certificate from the fleet CA (`mos ca`); the CRL is re-read\n" +
			"when it changes; the MQTT client id must be the certificate CN; each device\n" +
			"may publish and subscribe only under devices/<CN>/. --monitor CN lets that\n" +
			"identity read every device's topics. Each message is printed as it arrives:\n" +
			"client id, topic, payload. Runs until Ctrl-C.\n" +
			"The broker's own certificate (in the CA directory, under broker/) is issued\n" +
			"by the fleet CA for --host (default: the --listen host) when it is missing,\n" +
			"does not cover those hosts or expires within 30 days; only then is the CA\n" +
			"passphrase needed. Listening on every address needs --host.\n" +
			"For production, `mos broker mosquitto-config` writes the same setup for mosquitto.",
		Example: "  mos broker --listen 127.0.0.1:8883\n" +
			"  mos broker --listen 0.0.0.0:8883 --host mqtt.lab.lan --monitor ops\n" +
			"  mos broker mosquitto-config --listen 127.0.0.1:8883 --out ./mosquitto",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			names, err := brokerHosts(listen, hosts)
			if err != nil {
				return usageErr(cmd, err)
			}
			c, err := openCA(dir)
			if err != nil {
				return err
			}
			srv, issued, err := broker.ServerCertificate(c, filepath.Join(dir, "broker"), names, caUnlocker(a, c))
			if err != nil {
				return err
			}
			if issued {
				a.out.Infof("issued the broker's certificate for %v", names)
			}
			b, err := broker.Start(broker.Options{
				Listen: listen, CA: c, Server: srv, Monitors: monitors,
				Logger: slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: brokerLogLevel(a)})),
				OnMessage: func(id, topic string, payload []byte) {
					fmt.Fprintf(a.stdout, "%s %s %s\n", id, topic, payload)
				},
			})
			if err != nil {
				return err
			}
			defer b.Close()
			a.out.Infof("MQTT broker with mutual TLS on %s (fleet CA %s); Ctrl-C stops it", b.Addr(), dir)
			// main's context ends on Ctrl-C and SIGTERM.
			<-cmd.Context().Done()
			return nil
		},
	}
	caDirFlag(cmd, a, &dir)
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8883", "address to listen on")
	f.StringSliceVar(&hosts, "host", nil, "host names/addresses for the broker's certificate (default: the --listen host)")
	f.StringSliceVar(&monitors, "monitor", nil, "certificate CN allowed to read all devices' topics (repeatable)")
	cmd.AddCommand(newMosquittoConfigCmd(a))
	return cmd
}

func brokerLogLevel(a *app) slog.Level {
	if a.opts.Verbose {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func brokerHosts(listen string, hosts []string) ([]string, error) {
	if len(hosts) > 0 {
		return hosts, nil
	}
	h, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %q: %w", listen, err)
	}
	if h == "" || h == "0.0.0.0" || h == "::" {
		return nil, fmt.Errorf("--listen %q is every address: name the broker's host names with --host", listen)
	}
	return []string{h}, nil
}

type mosquittoResult struct {
	broker.MosquittoFiles
	Command string `json:"command"`
}

func (r mosquittoResult) Data() any {
	return map[string]string{"config": r.Config, "acl": r.ACL, "cafile": r.CAFile, "certfile": r.CertFile,
		"keyfile": r.KeyFile, "crlfile": r.CRLFile, "command": r.Command}
}
func (r mosquittoResult) Text() string {
	return fmt.Sprintf("mosquitto configuration written: %s (ACL %s)\nrun: %s\nafter `mos ca revoke`, run this command again and send mosquitto SIGHUP", r.Config, r.ACL, r.Command)
}

func newMosquittoConfigCmd(a *app) *cobra.Command {
	var dir, listen, out string
	var hosts, monitors []string
	cmd := &cobra.Command{
		Use:   "mosquitto-config",
		Short: "Write a mosquitto listener config for the fleet CA (mutual TLS, per-device ACL, CRL)",
		Long: "Write into --out DIR (created if missing; files mode 0600) what mosquitto\n" +
			"needs to admit the fleet's devices: mosquitto.conf with a listener on --listen\n" +
			"(require_certificate, use_identity_as_username, crlfile, TLS 1.2), the ACL\n" +
			"file with `pattern readwrite devices/%u/#` so each device reads and writes only\n" +
			"under devices/<CN>/, the CA chain, the CRL, and a new server certificate and\n" +
			"key for the broker, issued by the fleet CA for --host (default: the --listen\n" +
			"host; listening on every address needs --host). --monitor CN may read every\n" +
			"device's topics. It needs the CA passphrase. mosquitto reads the CRL when it\n" +
			"starts: after `mos ca revoke`, run this command again and send it SIGHUP.",
		Example: "  mos broker mosquitto-config --out ./mosquitto\n" +
			"  mos broker mosquitto-config --listen 0.0.0.0:8883 --host mqtt.example.net \\\n" +
			"      --monitor ops --out /etc/mosquitto/fleet",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := brokerHosts(listen, hosts); err != nil {
				return usageErr(cmd, err)
			}
			if out == "" {
				return usageErr(cmd, fmt.Errorf("--out DIR is required"))
			}
			c, err := unlockCA(a, dir)
			if err != nil {
				return err
			}
			abs, err := filepath.Abs(out)
			if err != nil {
				return err
			}
			f, err := broker.WriteMosquittoConfig(c, abs, broker.MosquittoOptions{Listen: listen, Hosts: hosts, Monitors: monitors})
			if err != nil {
				return output.WithExitCode(err, output.ExitUsage)
			}
			return a.out.Print(mosquittoResult{MosquittoFiles: *f, Command: "mosquitto -c " + f.Config})
		},
	}
	caDirFlag(cmd, a, &dir)
	fl := cmd.Flags()
	fl.StringVar(&listen, "listen", "127.0.0.1:8883", "listener address")
	fl.StringVar(&out, "out", "", "directory for mosquitto.conf, acl, certificates and CRL")
	fl.StringSliceVar(&hosts, "host", nil, "host names/addresses for the broker's certificate (default: the --listen host)")
	fl.StringSliceVar(&monitors, "monitor", nil, "certificate CN allowed to read all devices' topics (repeatable)")
	return cmd
}
