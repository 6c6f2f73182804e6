package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Set at link time by the Makefile:
//
//	go build -ldflags "-X main.version=v1.2.3 -X main.commit=abc1234 -X main.date=2026-01-02T03:04:05Z"
//
// These are build facts, not options, hence package variables. When they
// are empty (go install, go run), versionInfo falls back to what the Go
// toolchain recorded in the binary.
var (
	version string
	commit  string
	date    string
)

// versionResult is the JSON shape of `mos version --json`; its field names
// are a contract with scripts.
type versionResult struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

func newVersionCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of mos",
		Long: "Print the version of mos, the commit and date it was built from, the Go\n" +
			"version and the platform. A release build carries its version; a plain\n" +
			"\"go build\" or \"go install\" takes what the Go toolchain recorded (module\n" +
			"version, VCS revision and time).",
		Example: "  mos version\n" +
			"  mos version --json",
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.out.Print(currentVersion())
		},
	}
}

func currentVersion() versionResult {
	v := versionResult{
		Version:   version,
		Commit:    commit,
		Date:      date,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		v.fillFromBuildInfo(bi)
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	return v
}

// fillFromBuildInfo fills what -ldflags did not set: the module version
// (set by `go install ...@v1.2.3`) and the VCS stamp of a build from a
// checkout.
func (v *versionResult) fillFromBuildInfo(bi *debug.BuildInfo) {
	if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	ownCommit := v.Commit == "" // the commit, if any, will be the VCS stamp's
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			if v.Commit == "" {
				v.Commit = s.Value
			}
		case "vcs.time":
			if v.Date == "" {
				v.Date = s.Value
			}
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	// Only trusted alongside the revision it describes, not next to a
	// commit given by -ldflags.
	v.Modified = modified && ownCommit && v.Commit != ""
}

func (v versionResult) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mos %s\n", v.Version)
	if v.Commit != "" {
		mod := ""
		if v.Modified {
			mod = " (modified)"
		}
		fmt.Fprintf(&b, "commit:   %s%s\n", v.Commit, mod)
	}
	if v.Date != "" {
		fmt.Fprintf(&b, "built:    %s\n", v.Date)
	}
	fmt.Fprintf(&b, "go:       %s\n", v.GoVersion)
	fmt.Fprintf(&b, "platform: %s/%s\n", v.OS, v.Arch)
	return b.String()
}

func (v versionResult) Data() any { return v }
