package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/mos-tool/mos/cloud/ca"
	"github.com/mos-tool/mos/output"
)

// caDirFlag adds --ca-dir (env MOS_CA_DIR, default ~/.mos/ca).
func caDirFlag(cmd *cobra.Command, a *app, dir *string) {
	def := a.getenv("MOS_CA_DIR")
	if def == "" {
		if h, err := os.UserHomeDir(); err == nil {
			def = filepath.Join(h, ".mos", "ca")
		}
	}
	cmd.Flags().StringVar(dir, "ca-dir", def, "fleet CA directory (env MOS_CA_DIR)")
	// --ca DIR, the short spelling, sets the same value.
	cmd.Flags().StringVar(dir, "ca", def, "same as --ca-dir")
	cmd.Flags().MarkHidden("ca")
}

// caPassphrase gets the CA passphrase from MOS_CA_PASSPHRASE or, on a
// terminal, a prompt; never from a flag, which would land in the shell
// history and the process list.
func caPassphrase(a *app, confirm bool) ([]byte, error) {
	if p := a.getenv("MOS_CA_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		return nil, output.WithHint(output.WithExitCode(errors.New("no CA passphrase: MOS_CA_PASSPHRASE is not set and there is no terminal to ask on"), output.ExitUsage),
			"set MOS_CA_PASSPHRASE in the environment, or run on a terminal")
	}
	fmt.Fprint(a.stderr, "CA passphrase: ")
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(a.stderr)
	if err != nil {
		return nil, err
	}
	if confirm {
		fmt.Fprint(a.stderr, "again: ")
		q, err := term.ReadPassword(fd)
		fmt.Fprintln(a.stderr)
		if err != nil {
			return nil, err
		}
		if string(p) != string(q) {
			return nil, output.WithExitCode(errors.New("the passphrases differ"), output.ExitUsage)
		}
	}
	if len(p) == 0 {
		return nil, output.WithExitCode(errors.New("empty CA passphrase"), output.ExitUsage)
	}
	return p, nil
}

// unlockCA opens the CA and decrypts its signing key.
func unlockCA(a *app, dir string) (*ca.CA, error) {
	c, err := openCA(dir)
	if err != nil {
		return nil, err
	}
	if err := caUnlocker(a, c)(); err != nil {
		return nil, err
	}
	return c, nil
}

// caUnlocker returns what decrypts c's signing key, asking for the
// passphrase only when it is called, so commands that may find nothing to
// sign ask for none.
func caUnlocker(a *app, c *ca.CA) func() error {
	return func() error {
		pass, err := caPassphrase(a, false)
		if err != nil {
			return err
		}
		return caErr(c.Unlock(pass))
	}
}

func openCA(dir string) (*ca.CA, error) {
	c, err := ca.Open(dir)
	if errors.Is(err, ca.ErrNotCA) {
		return nil, output.WithHint(output.WithExitCode(err, output.ExitUsage), "create it with `mos ca init`, or name it with --ca-dir / MOS_CA_DIR")
	}
	return c, err
}

// caErr gives CA failures their exit code and a hint.
func caErr(err error) error {
	if errors.Is(err, ca.ErrWrongPassphrase) {
		return output.WithHint(output.WithExitCode(err, output.ExitCloud),
			"check MOS_CA_PASSPHRASE (or what you typed): it is the passphrase given to `mos ca init`")
	}
	return err
}

func newCACmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "A local CA for a fleet: root and intermediate, device certificates, revocation",
		Long: "A local certificate authority for your devices' MQTT identities (ECDSA\n" +
			"P-256), kept in --ca-dir (env MOS_CA_DIR, default ~/.mos/ca). The root and\n" +
			"intermediate keys are encrypted with a passphrase (scrypt, AES-256-GCM); it\n" +
			"is read from MOS_CA_PASSPHRASE or asked for on the terminal, never from a\n" +
			"flag, and a wrong one exits with code 13. Device certificates are issued\n" +
			"from CSRs (the device keeps its key), CN = device id, each with a random\n" +
			"serial, recorded in index.json; revoked ones go into crl.pem.\n" +
			"`mos cloud mqtt register` uses the same CA to give a device its certificate.",
		Example: "  MOS_CA_PASSPHRASE=... mos ca init --name 'Acme devices'\n" +
			"  mos ca sign esp32_A1B2C3.csr\n" +
			"  mos ca list",
	}
	cmd.AddCommand(newCAInitCmd(a), newCASignCmd(a), newCARevokeCmd(a), newCAListCmd(a))
	return cmd
}

type caInitResult struct {
	Dir   string `json:"dir"`
	Root  string `json:"root"`
	Inter string `json:"intermediate"`
	Chain string `json:"chain"`
	CRL   string `json:"crl"`
}

func (r caInitResult) Data() any { return r }
func (r caInitResult) Text() string {
	return fmt.Sprintf("fleet CA created in %s\n  root          %s\n  intermediate  %s\n  chain (for brokers and devices)  %s\n  CRL           %s",
		r.Dir, r.Root, r.Inter, r.Chain, r.CRL)
}

func newCAInitCmd(a *app) *cobra.Command {
	var dir, name string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a root and an intermediate CA",
		Long: "Create a new fleet CA in --ca-dir: a root certificate (valid 20 years) and\n" +
			"an intermediate (10 years) that signs device certificates and the CRL, both\n" +
			"ECDSA P-256, their keys encrypted with the passphrase (MOS_CA_PASSPHRASE, or\n" +
			"asked twice on the terminal; an empty one is refused). Also written:\n" +
			"chain.pem (intermediate then root, for brokers and devices), an empty\n" +
			"index.json and crl.pem. The directory is made mode 0700. A directory that\n" +
			"already holds a CA is refused: a CA is never overwritten.",
		Example: "  MOS_CA_PASSPHRASE=... mos ca init --ca-dir ./fleet-ca --name 'Acme devices'",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			pass, err := caPassphrase(a, true)
			if err != nil {
				return err
			}
			c, err := ca.Init(dir, ca.InitOptions{Name: name}, pass)
			if errors.Is(err, ca.ErrExists) {
				return output.WithHint(output.WithExitCode(err, output.ExitUsage), "a CA is never overwritten; choose another --ca-dir")
			}
			if err != nil {
				return err
			}
			return a.out.Print(caInitResult{Dir: c.Dir, Root: c.Path(ca.RootCertFile), Inter: c.Path(ca.InterCertFile),
				Chain: c.Path(ca.ChainFile), CRL: c.Path(ca.CRLFile)})
		},
	}
	caDirFlag(cmd, a, &dir)
	cmd.Flags().StringVar(&name, "name", "mos fleet CA", "organisation name in the CA certificates")
	return cmd
}

type caSignResult struct {
	DeviceID string `json:"device_id"`
	Serial   string `json:"serial"`
	NotAfter string `json:"not_after"`
	File     string `json:"file"`
}

func (r caSignResult) Data() any { return r }
func (r caSignResult) Text() string {
	return fmt.Sprintf("certificate for %s (serial %s, valid until %s) written to %s", r.DeviceID, r.Serial, r.NotAfter, r.File)
}

func newCASignCmd(a *app) *cobra.Command {
	var dir, out, id string
	var days int
	cmd := &cobra.Command{
		Use:   "sign CSR.pem",
		Short: "Issue a device certificate from a certificate request (CN = device id)",
		Long: "Issue a certificate for the key of CSR.pem (PEM or DER), signed by the\n" +
			"intermediate. The CSR's signature must verify and its key be ECDSA P-256;\n" +
			"its CN becomes the device id (letters, digits and _ . : -, at most 128\n" +
			"characters); --device-id refuses a CSR with another CN. The certificate is\n" +
			"valid --days (default 5 years, never beyond the intermediate), gets a random\n" +
			"serial and is recorded in index.json; it is written to --out, default\n" +
			"DEVICE_ID.crt. Needs the CA passphrase.",
		Example: "  mos ca sign esp32_A1B2C3.csr\n" +
			"  mos ca sign esp32_A1B2C3.csr --device-id esp32_A1B2C3 --out esp32_A1B2C3.crt --days 365",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if days <= 0 {
				return usageErr(cmd, fmt.Errorf("--days %d: must be positive", days))
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return output.WithExitCode(err, output.ExitBadInput)
			}
			csr, err := ca.ParseCSR(data)
			if err != nil {
				return output.WithExitCode(fmt.Errorf("%s: %w", args[0], err), output.ExitBadInput)
			}
			c, err := unlockCA(a, dir)
			if err != nil {
				return err
			}
			cert, err := c.Sign(csr, ca.SignOptions{DeviceID: id, Validity: time.Duration(days) * 24 * time.Hour})
			if err != nil {
				return output.WithExitCode(err, output.ExitBadInput)
			}
			if out == "" {
				out = cert.Subject.CommonName + ".crt"
			}
			if err := os.WriteFile(out, ca.CertPEM(cert), 0o644); err != nil {
				return err
			}
			return a.out.Print(caSignResult{DeviceID: cert.Subject.CommonName, Serial: cert.SerialNumber.Text(16),
				NotAfter: cert.NotAfter.UTC().Format(time.DateOnly), File: out})
		},
	}
	caDirFlag(cmd, a, &dir)
	cmd.Flags().StringVarP(&out, "out", "o", "", "certificate file to write (default DEVICE_ID.crt)")
	cmd.Flags().StringVar(&id, "device-id", "", "refuse the CSR unless its CN is this device id")
	cmd.Flags().IntVar(&days, "days", int(ca.DefaultDeviceValidity/(24*time.Hour)), "validity in days")
	return cmd
}

type caRecordsResult struct {
	Records []ca.Record `json:"certificates"`
	CRL     string      `json:"crl,omitempty"`
}

func (r caRecordsResult) Data() any { return r }
func (r caRecordsResult) Text() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERIAL\tDEVICE\tNOT AFTER\tSTATUS")
	for _, x := range r.Records {
		st := x.Status
		if st == ca.StatusValid && time.Now().After(x.NotAfter) {
			st = "expired"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Serial, x.DeviceID, x.NotAfter.UTC().Format(time.DateOnly), st)
	}
	tw.Flush()
	if r.CRL != "" {
		fmt.Fprintf(&b, "CRL re-issued: %s", r.CRL)
	}
	return strings.TrimRight(b.String(), "\n")
}

func newCARevokeCmd(a *app) *cobra.Command {
	var dir, reason string
	cmd := &cobra.Command{
		Use:   "revoke SERIAL",
		Short: "Revoke a certificate (by serial, hex) and re-issue the CRL",
		Long: "Mark the certificate with serial SERIAL (hex, as `mos ca list` shows it) as\n" +
			"revoked in index.json, with --reason, and re-issue crl.pem. Revoking a\n" +
			"revoked certificate changes nothing in the index. An unknown serial is\n" +
			"refused. Needs the CA passphrase. `mos broker` re-reads the CRL when it\n" +
			"changes; for mosquitto, run `mos broker mosquitto-config` again and send\n" +
			"it SIGHUP.",
		Example: "  mos ca revoke 8a3f...  # then reload the broker's CRL (mos broker re-reads it)\n" +
			"  mos ca revoke 8a3f... --reason 'device lost'",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := unlockCA(a, dir)
			if err != nil {
				return err
			}
			r, err := c.Revoke(args[0], reason)
			if errors.Is(err, ca.ErrUnknownSerial) {
				return output.WithHint(output.WithExitCode(err, output.ExitUsage), "`mos ca list` shows the serials")
			}
			if err != nil {
				return err
			}
			return a.out.Print(caRecordsResult{Records: []ca.Record{r}, CRL: c.Path(ca.CRLFile)})
		},
	}
	caDirFlag(cmd, a, &dir)
	cmd.Flags().StringVar(&reason, "reason", "", "why (recorded in the index)")
	return cmd
}

func newCAListCmd(a *app) *cobra.Command {
	var dir string
	var refresh bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every certificate issued; --refresh-crl re-issues the CRL",
		Long: "List the certificates recorded in index.json: serial, device id, expiry and\n" +
			"status (valid, expired or revoked). Listing needs no passphrase.\n" +
			"--refresh-crl also re-issues crl.pem (with the passphrase): a CRL is valid\n" +
			"for a year, and brokers refuse every device once it has expired.",
		Example: "  mos ca list\n" +
			"  MOS_CA_PASSPHRASE=... mos ca list --refresh-crl\n" +
			"  mos ca list --ca-dir ./fleet-ca --json",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c *ca.CA
			var err error
			if refresh {
				c, err = unlockCA(a, dir)
			} else {
				c, err = openCA(dir)
			}
			if err != nil {
				return err
			}
			res := caRecordsResult{}
			if refresh {
				if err := c.RefreshCRL(); err != nil {
					return err
				}
				res.CRL = c.Path(ca.CRLFile)
			}
			if res.Records, err = c.List(); err != nil {
				return err
			}
			if res.Records == nil {
				res.Records = []ca.Record{}
			}
			return a.out.Print(res)
		},
	}
	caDirFlag(cmd, a, &dir)
	cmd.Flags().BoolVar(&refresh, "refresh-crl", false, "re-issue the CRL (it is valid for a year; brokers refuse everyone once it expires)")
	return cmd
}
