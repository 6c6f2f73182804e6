package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwbundle"
	"github.com/mos-tool/mos/output"
)

func newFwCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fw",
		Short: "Make and inspect firmware bundles and images",
		Long: "Make firmware bundles from parts (mos fw pack) and look inside bundles, app\n" +
			"images and partition tables (mos fw info). Neither needs a board.",
		Example: "  mos fw info firmware.zip\n" +
			"  mos fw pack --out fw.zip --platform esp32 app:app:0x10000:app.bin",
		Args: usageArgs(cobra.NoArgs),
	}
	cmd.AddCommand(newFwPackCmd(a, "pack"), newFwInfoCmd(a))
	return cmd
}

// newCreateFwBundleCmd keeps the old mos name working. It is hidden: the
// help shows `mos fw pack`, which accepts mos's part syntax as well.
func newCreateFwBundleCmd(a *app) *cobra.Command {
	cmd := newFwPackCmd(a, "create-fw-bundle")
	cmd.Hidden = true
	return cmd
}

type fwPackOptions struct {
	out            string
	spec           string
	platform       string
	name           string
	version        string
	buildID        string
	buildTimestamp string
	description    string
}

func newFwPackCmd(a *app, use string) *cobra.Command {
	var o fwPackOptions
	cmd := &cobra.Command{
		Use:   use + " --out BUNDLE.zip (--spec SPEC.json | --platform CHIP PART...)",
		Short: "Write a firmware bundle (zip) from part files or a spec",
		Long: "Write a Mongoose OS compatible firmware bundle: manifest.json and the part\n" +
			"files, with SHA-1 and SHA-256 checksums. The zip is reproducible: the same\n" +
			"inputs give the same bytes.\n\n" +
			"A PART is NAME:TYPE:ADDR:FILE (ADDR decimal or 0x hex), or in old mos syntax\n" +
			"NAME:key=value,... (src=FILE, type=, addr=, fill=, size=, ptn=, flash=, ...).\n" +
			"--spec builds the parts from a spec instead (see firmware-images/README.md);\n" +
			"flags given with it override the spec's fields. The build timestamp defaults to\n" +
			"$SOURCE_DATE_EPOCH when set, else it is left out.",
		Example: "  mos fw pack --out fw.zip --platform esp32 --name demo --version 1.0 \\\n" +
			"      boot:boot:0x1000:build/bootloader.bin pt:pt:0x8000:build/partition-table.bin \\\n" +
			"      app:app:0x10000:build/app.bin\n" +
			"  mos fw pack --spec firmware-images/src/esp32/spec.json --out esp32-demo.zip",
		Args: usageArgs(cobra.ArbitraryArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runFwPack(a, cmd, o, args)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.out, "out", "o", "", "bundle file to write (required)")
	f.StringVar(&o.out, "output", "", "same as --out (old mos name)")
	f.MarkHidden("output")
	f.StringVar(&o.spec, "spec", "", "build the bundle from this pack spec (JSON)")
	f.StringVar(&o.platform, "platform", "", "chip the firmware is for: "+strings.Join(chips.Keys(), ", "))
	f.StringVar(&o.name, "name", "", "firmware name")
	f.StringVar(&o.version, "version", "", "firmware version")
	f.StringVar(&o.buildID, "build-id", "", "build id, e.g. 20250101-000000/1.0.0-g1a2b3c4")
	f.StringVar(&o.buildTimestamp, "build-timestamp", "", "build time, RFC 3339")
	f.StringVar(&o.description, "description", "", "firmware description")
	return cmd
}

func runFwPack(a *app, cmd *cobra.Command, o fwPackOptions, args []string) error {
	if o.out == "" {
		return usageErr(cmd, errors.New("--out is required"))
	}
	var (
		m    *fwbundle.Manifest
		srcs map[string][]byte
		err  error
	)
	switch {
	case o.spec != "" && len(args) > 0:
		return usageErr(cmd, errors.New("give --spec or PART arguments, not both"))
	case o.spec != "":
		if m, srcs, err = fwbundle.BuildSpec(o.spec); err != nil {
			return err
		}
	case len(args) == 0:
		return usageErr(cmd, errors.New("nothing to pack: give PART arguments or --spec"))
	default:
		if m, srcs, err = manifestFromParts(args); err != nil {
			var bad *fwbundle.Error // an unreadable file, not a usage mistake
			if errors.As(err, &bad) {
				return err
			}
			return usageErr(cmd, err)
		}
	}
	if err := o.apply(cmd, m, a.getenv); err != nil {
		return usageErr(cmd, err)
	}
	if m.Platform == "" {
		return usageErr(cmd, errors.New("--platform is required: the chip the firmware is for"))
	}
	var buf bytes.Buffer
	if err := fwbundle.Pack(&buf, m, srcs); err != nil {
		return output.WithExitCode(err, output.ExitBadInput)
	}
	// Parts that would overwrite each other make a bundle no flash can
	// hold as given: refuse it here rather than at the first `mos flash`.
	packed, err := fwbundle.Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()), o.out)
	if err != nil {
		return output.WithExitCode(err, output.ExitBadInput)
	}
	if err := packed.CheckOverlap(); err != nil {
		return err
	}
	if err := writeFileAtomic(o.out, buf.Bytes()); err != nil {
		return err
	}
	sum := sha256.Sum256(buf.Bytes())
	return a.out.Print(packResult{
		File: o.out, Size: buf.Len(), SHA256: hex.EncodeToString(sum[:]),
		Name: m.Name, Version: m.Version, Platform: m.Platform, Parts: manifestParts(m),
	})
}

// apply lets flags override the spec's (or set the parts') fields.
func (o fwPackOptions) apply(cmd *cobra.Command, m *fwbundle.Manifest, getenv func(string) string) error {
	set := func(flag string, dst *string, v string) {
		if cmd.Flags().Changed(flag) {
			*dst = v
		}
	}
	set("platform", &m.Platform, o.platform)
	set("name", &m.Name, o.name)
	set("version", &m.Version, o.version)
	set("build-id", &m.BuildID, o.buildID)
	set("build-timestamp", &m.BuildTimestamp, o.buildTimestamp)
	set("description", &m.Description, o.description)
	if m.Platform != "" {
		c, err := chips.ByKey(m.Platform)
		if err != nil {
			return err
		}
		m.Platform = c.Key
	}
	if m.BuildTimestamp == "" {
		// Reproducible-builds convention: the build's time comes from the
		// environment, never from the clock.
		if s := getenv("SOURCE_DATE_EPOCH"); s != "" {
			sec, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("SOURCE_DATE_EPOCH %q is not a number of seconds", s)
			}
			m.BuildTimestamp = time.Unix(sec, 0).UTC().Format(time.RFC3339)
		}
	} else if _, err := time.Parse(time.RFC3339, m.BuildTimestamp); err != nil {
		return fmt.Errorf("build timestamp %q is not RFC 3339 (2025-01-02T03:04:05Z)", m.BuildTimestamp)
	}
	return nil
}

// manifestFromParts reads PART arguments: NAME:TYPE:ADDR:FILE, or mos's
// NAME:key=value,... form.
func manifestFromParts(args []string) (*fwbundle.Manifest, map[string][]byte, error) {
	m := &fwbundle.Manifest{Parts: map[string]*fwbundle.ManifestPart{}}
	srcs := map[string][]byte{}
	for _, arg := range args {
		name, rest, ok := strings.Cut(arg, ":")
		if !ok || name == "" {
			return nil, nil, fmt.Errorf("part %q: want NAME:TYPE:ADDR:FILE", arg)
		}
		if m.Parts[name] != nil {
			return nil, nil, fmt.Errorf("part %q given twice", name)
		}
		var p *fwbundle.ManifestPart
		var file string
		var err error
		if typ, tail, _ := strings.Cut(rest, ":"); !strings.Contains(typ, "=") {
			p, file, err = colonPart(typ, tail)
		} else {
			p, file, err = mosPart(rest)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("part %q: %w", arg, err)
		}
		if file != "" {
			data, err := os.ReadFile(file)
			if err != nil {
				return nil, nil, &fwbundle.Error{Kind: fwbundle.ErrMissingSrc, File: file, Part: name, Cause: errors.Unwrap(err)}
			}
			if p.Src == "" || p.Src == file {
				p.Src = filepath.Base(file)
			}
			if old, dup := srcs[p.Src]; dup && !bytes.Equal(old, data) {
				return nil, nil, fmt.Errorf("part %q: two different files are named %s", name, p.Src)
			}
			srcs[p.Src] = data
		}
		m.Parts[name] = p
	}
	return m, srcs, nil
}

func colonPart(typ, tail string) (*fwbundle.ManifestPart, string, error) {
	addr, file, ok := strings.Cut(tail, ":")
	if !ok || file == "" {
		return nil, "", errors.New("want NAME:TYPE:ADDR:FILE")
	}
	a, err := fwbundle.ParseAddr(addr)
	if err != nil {
		return nil, "", err
	}
	return &fwbundle.ManifestPart{Type: typ, Addr: fwbundle.Number(a)}, file, nil
}

// mosPart reads key=value,... into a manifest part through its JSON form,
// as old mos did: numbers and booleans typed, other values strings.
func mosPart(props string) (*fwbundle.ManifestPart, string, error) {
	obj := map[string]any{}
	for _, kv := range strings.Split(props, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, "", fmt.Errorf("%q is not key=value", kv)
		}
		switch {
		case v == "true" || v == "false":
			obj[k] = v == "true"
		default:
			if n, err := strconv.ParseInt(v, 0, 64); err == nil {
				obj[k] = n
			} else {
				obj[k] = v
			}
		}
	}
	raw, err := json.Marshal(obj)
	if err != nil {
		return nil, "", err
	}
	p := &fwbundle.ManifestPart{}
	if err := p.UnmarshalJSON(raw); err != nil {
		return nil, "", err
	}
	return p, p.Src, nil
}

// writeFileAtomic writes through a temporary file in the same folder, so
// that an interrupted pack never leaves half a bundle under the name.
func writeFileAtomic(name string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".mos-pack-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// packResult is what `mos fw pack` reports.
type packResult struct {
	File     string         `json:"file"`
	Size     int            `json:"size"`
	SHA256   string         `json:"sha256"`
	Name     string         `json:"name"`
	Version  string         `json:"version"`
	Platform string         `json:"platform"`
	Parts    []manifestInfo `json:"parts"`
}

func (r packResult) Data() any { return r }
func (r packResult) Text() string {
	var b strings.Builder
	what := strings.TrimSpace(r.Name + " " + r.Version)
	if what != "" {
		what += " "
	}
	fmt.Fprintf(&b, "Wrote %s (%d bytes): %sfor %s\n", r.File, r.Size, what, r.Platform)
	writePartsTable(&b, r.Parts)
	return b.String()
}

// manifestInfo is a part as the manifest describes it (addresses before
// partition names are resolved).
type manifestInfo struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Addr     uint32 `json:"addr"`
	Size     uint32 `json:"size"`
	Src      string `json:"src,omitempty"`
	Fill     *uint8 `json:"fill,omitempty"`
	Ptn      string `json:"ptn,omitempty"`
	Flash    bool   `json:"flash"`
	CSSHA1   string `json:"cs_sha1,omitempty"`
	CSSHA256 string `json:"cs_sha256,omitempty"`
}

func manifestParts(m *fwbundle.Manifest) []manifestInfo {
	out := []manifestInfo{}
	for name, p := range m.Parts {
		out = append(out, manifestInfo{
			Name: name, Type: p.Type, Addr: uint32(p.Addr), Size: uint32(p.Size), Src: p.Src,
			Fill: p.Fill, Ptn: p.Ptn, Flash: p.Flashed(), CSSHA1: p.CSSHA1, CSSHA256: p.CSSHA256,
		})
	}
	slices.SortFunc(out, func(x, y manifestInfo) int { return strings.Compare(x.Name, y.Name) })
	return out
}

func writePartsTable(b *strings.Builder, parts []manifestInfo) {
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  PART\tTYPE\tADDR\tSIZE\tSOURCE\tSHA-256")
	for _, p := range parts {
		src := p.Src
		if p.Fill != nil {
			src = fmt.Sprintf("fill 0x%02x", *p.Fill)
		}
		addr := fmt.Sprintf("0x%06x", p.Addr)
		if p.Ptn != "" { // the address is relative to the partition, or (app) ignored
			addr = p.Ptn + "+" + addr
			if p.Type == "app" || p.Addr == 0 {
				addr = p.Ptn
			}
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%s\t%s\n", p.Name, dash(p.Type), addr, p.Size, src, dash(short(p.CSSHA256)))
	}
	tw.Flush()
}

// short cuts a digest for tables; --json has it whole.
func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
