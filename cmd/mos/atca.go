package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/provision"
)

// `mos atca ...`: the board's ATECC508A crypto chip through the firmware's
// ATCA.* methods (Mongoose OS's atca library; the firmware must have
// sys.atca.enable and i2c.enable set). The old spellings atca-get-config,
// atca-set-config, atca-lock-zone, atca-gen-key and atca-get-pub-key are
// kept as hidden top-level commands.

// atcaCommands returns `mos atca` and the old top-level spellings.
func atcaCommands(a *app) []*cobra.Command {
	atca := &cobra.Command{
		Use:   "atca",
		Short: "Configure the board's ATECC508A crypto chip, make and read its keys",
		Long: "The ATECC508A holds P-256 private keys that never leave it. Its config zone\n" +
			"(slot types) and data zone are each locked once and for ever: a key can be\n" +
			"made only once the config zone is locked, and used for signing once both are.\n" +
			"The firmware must have sys.atca.enable and i2c.enable set\n" +
			"(mos config set sys.atca.enable=true i2c.enable=true).",
		Example: "  mos --port /dev/ttyUSB0 atca get-config\n" +
			"  mos --port /dev/ttyUSB0 atca lock-zone config\n" +
			"  mos --port /dev/ttyUSB0 atca gen-key 0\n" +
			"  mos --port /dev/ttyUSB0 atca lock-zone data\n" +
			"  mos --port /dev/ttyUSB0 atca get-pub-key 0 device.pub.pem",
	}
	ctors := []func(*app) *cobra.Command{newATCAGetConfigCmd, newATCASetConfigCmd, newATCALockZoneCmd, newATCAGenKeyCmd, newATCAGetPubKeyCmd}
	out := []*cobra.Command{atca}
	for _, ctor := range ctors {
		atca.AddCommand(ctor(a))
		old := ctor(a)
		old.Use = "atca-" + old.Use
		old.Hidden = true
		out = append(out, old)
	}
	return out
}

// atcaConfigInfo is the decoded configuration zone.
type atcaConfigInfo struct {
	Config       string   `json:"config"` // hex, 128 bytes
	Serial       string   `json:"serial"`
	Revision     string   `json:"revision"`
	ConfigLocked bool     `json:"config_locked"`
	DataLocked   bool     `json:"data_locked"`
	SlotConfig   []string `json:"slot_config"` // 16 x LE16 as hex
	KeyConfig    []string `json:"key_config"`
	file         string
}

func decodeATCAConfig(cfg []byte, cl, dl bool) atcaConfigInfo {
	// byte offsets from the ATECC508A datasheet, table 2-5
	r := atcaConfigInfo{
		Config:       hex.EncodeToString(cfg),
		Serial:       hex.EncodeToString(append(append([]byte{}, cfg[0:4]...), cfg[8:13]...)),
		Revision:     hex.EncodeToString(cfg[4:8]),
		ConfigLocked: cl, DataLocked: dl,
	}
	for s := range 16 {
		r.SlotConfig = append(r.SlotConfig, fmt.Sprintf("%04x", binary.LittleEndian.Uint16(cfg[20+2*s:])))
		r.KeyConfig = append(r.KeyConfig, fmt.Sprintf("%04x", binary.LittleEndian.Uint16(cfg[96+2*s:])))
	}
	return r
}

func (r atcaConfigInfo) Data() any { return r }

func (r atcaConfigInfo) Text() string {
	var b strings.Builder
	yes := map[bool]string{true: "locked", false: "unlocked"}
	fmt.Fprintf(&b, "Serial:      %s\nRevision:    %s\nConfig zone: %s\nData zone:   %s\n", r.Serial, r.Revision, yes[r.ConfigLocked], yes[r.DataLocked])
	fmt.Fprintf(&b, "Slot  SlotConfig  KeyConfig\n")
	for s := range 16 {
		fmt.Fprintf(&b, "%4d  %-10s  %s\n", s, r.SlotConfig[s], r.KeyConfig[s])
	}
	if r.file != "" {
		fmt.Fprintf(&b, "Written to %s (128 bytes in hex)\n", r.file)
	}
	return b.String()
}

func newATCAGetConfigCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   "get-config [FILE]",
		Short: "Show the crypto chip's configuration zone; with FILE, also save it (hex)",
		Long: "Read the chip's 128-byte configuration zone through the firmware and show it\n" +
			"decoded: serial number, revision, whether the config and data zones are\n" +
			"locked, and SlotConfig and KeyConfig of each of the 16 slots. With FILE, the\n" +
			"128 bytes are also written there in hex (a file already there is replaced),\n" +
			"the form `mos atca set-config` reads. Nothing on the device changes.",
		Example: "  mos --port /dev/ttyUSB0 atca get-config\n" +
			"  mos --port /dev/ttyUSB0 atca get-config zone.hex",
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				cfg, cl, dl, err := s.ATCAConfig(ctx)
				if err != nil {
					return atcaHint(err)
				}
				r := decodeATCAConfig(cfg, cl, dl)
				if len(args) == 1 {
					if err := os.WriteFile(args[0], []byte(hex.EncodeToString(cfg)+"\n"), 0o644); err != nil {
						return err
					}
					r.file = args[0]
				}
				return a.out.Print(r)
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
}

// readATCAConfigFile reads 128 bytes, raw or in hex (what get-config saves).
func readATCAConfigFile(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, output.Usagef("%w", err)
	}
	if len(b) == 128 {
		return b, nil
	}
	h := strings.Join(strings.Fields(string(b)), "")
	d, err := hex.DecodeString(h)
	if err != nil || len(d) != 128 {
		return nil, output.WithExitCode(fmt.Errorf("%s: want the 128 bytes of a config zone, raw or in hex (as `mos atca get-config FILE` saves them)", name), output.ExitBadInput)
	}
	return d, nil
}

func newATCASetConfigCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   "set-config FILE",
		Short: "Write the crypto chip's configuration zone from FILE (128 bytes, raw or hex)",
		Long: "Write the configuration zone (slot and key types) while it is unlocked. The\n" +
			"chip keeps its read-only bytes (serial number, revision, lock bytes). Nothing\n" +
			"is permanent until `mos atca lock-zone config`; once it is locked, the chip\n" +
			"refuses the write. FILE that is not 128 bytes raw or in hex is refused before\n" +
			"the device is opened.",
		Example: "  mos --port /dev/ttyUSB0 atca get-config zone.hex\n" +
			"  # edit the SlotConfig and KeyConfig bytes in zone.hex, then:\n" +
			"  mos --port /dev/ttyUSB0 atca set-config zone.hex",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := readATCAConfigFile(args[0])
			if err != nil {
				return err
			}
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				if err := s.ATCASetConfig(ctx, cfg); err != nil {
					return atcaHint(err)
				}
				return a.out.Print(textResult{text: "Config zone written (not locked)", data: map[string]any{"written": true}})
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
}

// textResult is a one-line answer.
type textResult struct {
	text string
	data any
}

func (r textResult) Text() string { return r.text }
func (r textResult) Data() any    { return r.data }

// confirm asks the person at the terminal; without a terminal it refuses
// unless --yes was given.
func confirm(cmd *cobra.Command, a *app, what string, yes bool) error {
	if yes {
		return nil
	}
	in := cmd.InOrStdin()
	if !output.IsTerminalReader(in) || a.out.JSON() {
		return output.Usagef("%s\nThis cannot be undone; nobody can be asked here (stdin is not a terminal), so nothing was done: add --yes to do it", what)
	}
	fmt.Fprintf(a.stderr, "%s\nThis cannot be undone. Continue? [y/N] ", what)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if ans := strings.ToLower(strings.TrimSpace(line)); ans != "y" && ans != "yes" {
		return output.WithExitCode(errors.New("not confirmed: nothing was done"), output.ExitUsage)
	}
	return nil
}

func newATCALockZoneCmd(a *app) *cobra.Command {
	var o rpcOptions
	var yes bool
	cmd := &cobra.Command{
		Use:   "lock-zone config|data",
		Short: "Lock a zone of the crypto chip for ever (asks first unless --yes)",
		Long: "Lock the config zone (0) or the data zone (1). Locking is permanent: a locked\n" +
			"config zone fixes the slot types for ever; a locked data zone lets the chip\n" +
			"sign and forbids clear-text writes. The config zone must be locked first.",
		Example: "  mos --port /dev/ttyUSB0 atca lock-zone config\n" +
			"  mos --port /dev/ttyUSB0 atca lock-zone data --yes",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			zone, name := -1, ""
			switch strings.ToLower(args[0]) {
			case "config", "0":
				zone, name = provision.ATCAZoneConfig, "config"
			case "data", "1":
				zone, name = provision.ATCAZoneData, "data"
			default:
				return usageErr(cmd, fmt.Errorf("unknown zone %q: config (0) or data (1)", args[0]))
			}
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				cfg, cl, dl, err := s.ATCAConfig(ctx)
				if err != nil {
					return atcaHint(err)
				}
				info := decodeATCAConfig(cfg, cl, dl)
				if (zone == provision.ATCAZoneConfig && cl) || (zone == provision.ATCAZoneData && dl) {
					return a.out.Print(textResult{text: fmt.Sprintf("The %s zone of chip %s is already locked: nothing to do", name, info.Serial),
						data: map[string]any{"zone": name, "locked": true, "changed": false}})
				}
				if zone == provision.ATCAZoneData && !cl {
					return output.WithHint(errors.New("the data zone can only be locked after the config zone"), "run `mos atca lock-zone config` first")
				}
				what := fmt.Sprintf("About to lock the %s zone of crypto chip %s for ever.", name, info.Serial)
				if zone == provision.ATCAZoneConfig {
					what += "\nSlot types will be fixed as they are now (see `mos atca get-config`)."
				} else {
					what += "\nSlots will no longer take clear-text writes; keys can sign."
				}
				if err := confirm(cmd, a, what, yes); err != nil {
					return err
				}
				if err := s.ATCALockZone(ctx, zone); err != nil {
					return atcaHint(err)
				}
				return a.out.Print(textResult{text: fmt.Sprintf("The %s zone is locked", name),
					data: map[string]any{"zone": name, "locked": true, "changed": true}})
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask: lock now")
	o.addFlags(cmd, a)
	return cmd
}

func parseSlot(cmd *cobra.Command, s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || n > 15 {
		return 0, usageErr(cmd, fmt.Errorf("bad slot %q: 0..15", s))
	}
	return n, nil
}

// pubKeyResult is a public key in PEM.
type pubKeyResult struct {
	Slot int    `json:"slot"`
	PEM  string `json:"pem"`
	file string
}

func (r pubKeyResult) Data() any { return r }
func (r pubKeyResult) Text() string {
	if r.file != "" {
		return fmt.Sprintf("%sWritten to %s", r.PEM, r.file)
	}
	return r.PEM
}

func pubKeyOut(slot int, pub any, file string) (pubKeyResult, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return pubKeyResult{}, err
	}
	r := pubKeyResult{Slot: slot, PEM: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))}
	if file != "" {
		if err := os.WriteFile(file, []byte(r.PEM), 0o644); err != nil {
			return r, err
		}
		r.file = file
	}
	return r, nil
}

func newATCAGenKeyCmd(a *app) *cobra.Command {
	var o rpcOptions
	var yes bool
	cmd := &cobra.Command{
		Use:   "gen-key SLOT [FILE]",
		Short: "Make a new private key inside the crypto chip and print its public key",
		Long: "The chip makes a P-256 private key in SLOT that never leaves it, and returns\n" +
			"the public key (printed in PEM; saved to FILE if given). A key already in the\n" +
			"slot is destroyed: then it asks first, and with stdin not a terminal it\n" +
			"refuses unless --yes. SLOT is 0 to 15. The chip makes keys only once its\n" +
			"config zone is locked (`mos atca lock-zone config`).",
		Example: "  mos --port /dev/ttyUSB0 atca gen-key 0\n" +
			"  mos --port /dev/ttyUSB0 atca gen-key 0 slot0.pub.pem --yes",
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			slot, err := parseSlot(cmd, args[0])
			if err != nil {
				return err
			}
			ref := provision.KeyRef(fmt.Sprintf("ATCA:%d", slot))
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				if _, err := s.DevicePublicKey(ctx, ref); err == nil {
					if err := confirm(cmd, a, fmt.Sprintf("Slot %d already holds a key; a new one replaces it for ever (certificates made for it stop working).", slot), yes); err != nil {
						return err
					}
				}
				pub, err := s.GenerateDeviceKey(ctx, ref)
				if err != nil {
					return atcaHint(err)
				}
				file := ""
				if len(args) == 2 {
					file = args[1]
				}
				r, err := pubKeyOut(slot, pub, file)
				if err != nil {
					return err
				}
				return a.out.Print(r)
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask before replacing a key")
	o.addFlags(cmd, a)
	return cmd
}

func newATCAGetPubKeyCmd(a *app) *cobra.Command {
	var o rpcOptions
	cmd := &cobra.Command{
		Use:   "get-pub-key SLOT [FILE]",
		Short: "Print the public key of the crypto chip's key in SLOT (PEM; saved to FILE if given)",
		Long: "Ask the chip for the public key of the P-256 private key in SLOT (0 to 15)\n" +
			"and print it in PEM; with FILE, also write it there. The private key stays\n" +
			"in the chip. Nothing on the device changes.",
		Example: "  mos --port /dev/ttyUSB0 atca get-pub-key 0\n" +
			"  mos --port /dev/ttyUSB0 atca get-pub-key 0 device.pub.pem",
		Args: usageArgs(cobra.RangeArgs(1, 2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			slot, err := parseSlot(cmd, args[0])
			if err != nil {
				return err
			}
			return withDevice(cmd, a, o, func(ctx context.Context, s *session) error {
				pub, err := s.DevicePublicKey(ctx, provision.KeyRef(fmt.Sprintf("ATCA:%d", slot)))
				if err != nil {
					return atcaHint(err)
				}
				file := ""
				if len(args) == 2 {
					file = args[1]
				}
				r, err := pubKeyOut(slot, pub, file)
				if err != nil {
					return err
				}
				return a.out.Print(r)
			})
		},
	}
	o.addFlags(cmd, a)
	return cmd
}

// atcaHint says what to do about the usual ATCA failures.
func atcaHint(err error) error {
	var re *provision.RPCError
	if !errors.As(err, &re) {
		return err
	}
	switch {
	case re.Code == provision.CodeNotFound:
		return output.WithHint(err, "the firmware has no crypto chip support enabled: `mos config set sys.atca.enable=true i2c.enable=true`, then try again (no chip on the board gives this too; see the boot log)")
	case re.Code == 500 && strings.HasSuffix(re.Message, "0xf4"):
		return output.WithHint(err, "the chip refused in its present state: keys need the config zone locked, signing needs both zones locked, a locked zone cannot be written (`mos atca get-config` shows the locks)")
	}
	return err
}
