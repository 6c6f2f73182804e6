package doctor

import (
	"bufio"
	"context"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
)

// modulePath identifies the mos source tree by its go.mod.
const modulePath = "github.com/mos-tool/mos"

// minNode is the Node.js major version the interop tests need (esptool-js's
// test dependencies; README states Node.js 20).
const minNode = 20

// sourceRoot returns the directory of mos's go.mod at or above dir, or "".
func sourceRoot(root fs.FS, dir string) string {
	for d := path.Clean(dir); ; d = path.Dir(d) {
		b, err := fs.ReadFile(root, rel(path.Join(d, "go.mod")))
		if err == nil {
			sc := bufio.NewScanner(strings.NewReader(string(b)))
			for sc.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok && strings.TrimSpace(m) == modulePath {
					return d
				}
			}
		}
		if d == "/" || d == "." {
			return ""
		}
	}
}

var versionRE = regexp.MustCompile(`(\d+)\.(\d+)(?:\.(\d+))?`)

// parseVersion returns the first dotted version in s as three numbers.
func parseVersion(s string) ([3]int, bool) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return [3]int{}, false
	}
	var v [3]int
	for i := range 3 {
		v[i], _ = strconv.Atoi(m[i+1])
	}
	return v, true
}

func less(a, b [3]int) bool {
	for i := range 3 {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// checkToolchain runs only inside the mos source tree: Go at least the
// go.mod's go line, Node.js and npm for the interop tests, git for the
// version stamp `make build` puts in the binary.
func checkToolchain(ctx context.Context, r *Report, env Env) {
	src := sourceRoot(env.Root, env.SourceDir)
	if src == "" {
		return
	}
	want := [3]int{}
	if b, err := fs.ReadFile(env.Root, rel(path.Join(src, "go.mod"))); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "go "); ok {
				want, _ = parseVersion(v)
			}
		}
	}
	subject := "source tree " + src
	tools := []struct {
		name string
		args []string
		min  [3]int
		why  string
	}{
		{"go", []string{"version"}, want, "go.mod's go line"},
		{"node", []string{"--version"}, [3]int{minNode, 0, 0}, "the interop tests run esptool-js"},
		{"npm", []string{"--version"}, [3]int{}, "make test installs the pinned npm packages with npm ci"},
		{"git", []string{"--version"}, [3]int{}, "make build stamps the version from git"},
	}
	for _, t := range tools {
		out, err := env.Run(ctx, t.name, t.args...)
		f := Finding{Check: "toolchain-" + t.name, Subject: subject}
		v, ok := parseVersion(out)
		switch {
		case err != nil:
			f.Status = Problem
			f.Summary = t.name + " is not available: " + err.Error()
			f.Detail = t.why
			f.Fix = "install " + t.name + installHint(t.name, t.min)
		case t.min != [3]int{} && (!ok || less(v, t.min)):
			f.Status = Problem
			f.Summary = t.name + " " + strings.TrimSpace(out) + " is too old"
			f.Detail = t.why
			f.Fix = "install " + t.name + installHint(t.name, t.min)
		default:
			f.Status = OK
			f.Summary = strings.TrimSpace(firstLine(out))
			if !strings.HasPrefix(f.Summary, t.name+" ") {
				f.Summary = t.name + " " + f.Summary
			}
		}
		r.add(f)
	}
}

func installHint(name string, min [3]int) string {
	if min == [3]int{} {
		return ""
	}
	s := " " + strconv.Itoa(min[0]) + "." + strconv.Itoa(min[1])
	if name == "go" {
		s += "." + strconv.Itoa(min[2])
	}
	return s + " or newer"
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
