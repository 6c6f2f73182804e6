package doctor

import (
	"context"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/mos-tool/mos/port"
)

// Local returns the Env of this machine: "/" as the root, access(2) for
// permissions, port.Open, and the working directory for the toolchain check.
func Local(portAddr string) Env {
	dir, _ := os.Getwd()
	env := Env{
		GOOS:   runtime.GOOS,
		Access: access,
		Port:   portAddr,
		Open:   port.Open,
		Run: func(ctx context.Context, name string, args ...string) (string, error) {
			out, err := exec.CommandContext(ctx, name, args...).Output()
			return strings.TrimSpace(string(out)), err
		},
	}
	if runtime.GOOS != "windows" {
		env.Root = os.DirFS("/")
		env.SourceDir = dir
	}
	return env
}
