package main

import (
	"runtime/debug"
	"testing"
)

// A plain `go build` or `go install` carries no -ldflags: the version
// comes from what the Go toolchain recorded in the binary.
func TestVersionFromBuildInfo(t *testing.T) {
	vcs := []debug.BuildSetting{
		{Key: "vcs.revision", Value: "0123456789abcdef"},
		{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
		{Key: "vcs.modified", Value: "true"},
	}
	tests := []struct {
		name string
		in   versionResult // what -ldflags set
		bi   debug.BuildInfo
		want versionResult
	}{
		{"go build in a checkout", versionResult{}, debug.BuildInfo{Main: debug.Module{Version: "(devel)"}, Settings: vcs},
			versionResult{Commit: "0123456789abcdef", Date: "2026-12-01T10:00:00Z", Modified: true}},
		{"go install @version", versionResult{}, debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}},
			versionResult{Version: "v1.2.3"}},
		{"ldflags win", versionResult{Version: "v2.0.0", Commit: "abc", Date: "d"}, debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: vcs},
			versionResult{Version: "v2.0.0", Commit: "abc", Date: "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.in
			v.fillFromBuildInfo(&tt.bi)
			if v != tt.want {
				t.Errorf("got %+v, want %+v", v, tt.want)
			}
		})
	}
}
