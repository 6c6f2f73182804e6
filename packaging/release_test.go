// Package packaging holds the release tooling (release.sh, nfpm.yaml, the
// udev rule) and this test of what it produces.
package packaging

import (
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// need returns the path of a program the test cannot do without: missing,
// it fails the test in CI and skips it elsewhere, saying why.
func need(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is needed to check the .deb and is not installed (.ci/run installs it)", name)
		}
		t.Skipf("%s not installed: cannot check the .deb", name)
	}
	return p
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestDeb builds the release for this machine's Linux architecture only
// (the full matrix is `make release`), then checks the .deb the way a user's
// system sees it: dpkg-deb's view of its control data and files, and the
// packaged binary run from an unpacked root.
func TestDeb(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the .deb holds a Linux binary, which only runs on Linux")
	}
	dpkgDeb := need(t, "dpkg-deb")
	sh := need(t, "sh")
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")

	const (
		version = "v1.2.3-test"
		commit  = "0123456789abcdef0123456789abcdef01234567"
		date    = "2026-01-02T03:04:05Z"
		epoch   = "1767323045" // date as Unix seconds
	)
	dist := t.TempDir()
	top, _ := filepath.Abs("..")
	run(t, top, []string{
		"GO=" + goCmd, "VERSION=" + version, "COMMIT=" + commit, "DATE=" + date, "EPOCH=" + epoch,
		"DIST=" + dist, "TARGETS=linux/" + runtime.GOARCH, "PACKAGES=deb",
	}, sh, "packaging/release.sh")

	debs, _ := filepath.Glob(filepath.Join(dist, "*.deb"))
	if len(debs) != 1 {
		t.Fatalf("want one .deb in %s, found %v", dist, debs)
	}
	deb := debs[0]

	info := run(t, "", nil, dpkgDeb, "-I", deb)
	for _, want := range []string{
		"Package: mos\n", "Version: 1.2.3-test\n", "Architecture: " + runtime.GOARCH + "\n", "postinst",
	} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb -I lacks %q:\n%s", want, info)
		}
	}

	contents := run(t, "", nil, dpkgDeb, "-c", deb)
	files := map[string]string{} // path -> "mode owner"
	sc := bufio.NewScanner(strings.NewReader(contents))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) >= 6 {
			files[strings.TrimPrefix(f[len(f)-1], ".")] = f[0] + " " + f[1]
		}
	}
	for path, mode := range map[string]string{
		"/usr/bin/mos":                                  "-rwxr-xr-x root/root",
		"/usr/lib/udev/rules.d/70-mos-esp.rules":        "-rw-r--r-- root/root",
		"/usr/share/bash-completion/completions/mos":    "-rw-r--r-- root/root",
		"/usr/share/zsh/vendor-completions/_mos":        "-rw-r--r-- root/root",
		"/usr/share/fish/vendor_completions.d/mos.fish": "-rw-r--r-- root/root",
		"/usr/share/man/man1/mos.1.gz":                  "-rw-r--r-- root/root",
		"/usr/share/man/man1/mos-doctor.1.gz":           "-rw-r--r-- root/root",
		"/usr/share/man/man1/mos-flash.1.gz":            "-rw-r--r-- root/root",
	} {
		if got, ok := files[path]; !ok {
			t.Errorf("%s missing from the .deb; it holds:\n%s", path, contents)
		} else if got != mode {
			t.Errorf("%s is %q, want %q", path, got, mode)
		}
	}
	if strings.Contains(contents, "2026-01-02") == false {
		t.Errorf("file times are not the commit date %s:\n%s", date, contents)
	}

	root := t.TempDir()
	run(t, "", nil, dpkgDeb, "-x", deb, root)
	mos := filepath.Join(root, "usr", "bin", "mos")

	var v struct {
		Result struct{ Version, Commit, Date string }
	}
	if err := json.Unmarshal([]byte(run(t, "", nil, mos, "version", "--json")), &v); err != nil {
		t.Fatalf("mos version --json: %v", err)
	}
	if v.Result.Version != version || v.Result.Commit != commit || v.Result.Date != date {
		t.Errorf("packaged mos version = %+v, want %s %s %s", v.Result, version, commit, date)
	}
	if out := run(t, "", nil, mos, "version"); !strings.HasPrefix(out, "mos "+version+"\n") {
		t.Errorf("packaged mos version printed %q", out)
	}
	help := run(t, "", nil, mos, "--help")
	for _, want := range []string{"Usage:", "mos [command]", "doctor", "flash", "completion"} {
		if !strings.Contains(help, want) {
			t.Errorf("packaged mos --help lacks %q:\n%s", want, help)
		}
	}

	// The man page is the command's own text, compressed.
	f, err := os.Open(filepath.Join(root, "usr/share/man/man1/mos-doctor.1.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("mos-doctor.1.gz: %v", err)
	}
	man, _ := io.ReadAll(zr)
	if !strings.Contains(string(man), ".TH \"MOS-DOCTOR\" \"1\"") || !strings.Contains(string(man), "mos-doctor - ") {
		t.Errorf("mos-doctor.1 is not the doctor command's man page:\n%.400s", man)
	}

	// The help topics (mos help bundles, ...) are section 7 pages.
	if _, err := os.Stat(filepath.Join(root, "usr/share/man/man7/mos-bundles.7.gz")); err != nil {
		t.Errorf("the help topic pages are not packaged: %v", err)
	}

	// Every bridge the README promises is in the udev rule, with uaccess.
	rule, err := os.ReadFile(filepath.Join(root, "usr/lib/udev/rules.d/70-mos-esp.rules"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"10c4:ea60", "1a86:7523", "1a86:55d4", "0403:6001", "0403:6010", "0403:6015", "303a:1001"} {
		vid, pid, _ := strings.Cut(id, ":")
		line := `ATTRS{idVendor}=="` + vid + `", ATTRS{idProduct}=="` + pid + `", TAG+="uaccess"`
		if !strings.Contains(string(rule), line) {
			t.Errorf("udev rule has no uaccess line for %s", id)
		}
	}

	// SHA256SUMS names the archive and the .deb with their hashes.
	sums, err := os.ReadFile(filepath.Join(dist, "SHA256SUMS"))
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for _, line := range strings.Split(strings.TrimSpace(string(sums)), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok {
			t.Fatalf("SHA256SUMS line %q", line)
		}
		b, err := os.ReadFile(filepath.Join(dist, name))
		if err != nil {
			t.Fatalf("SHA256SUMS lists %s: %v", name, err)
		}
		h := sha256.Sum256(b)
		if hex.EncodeToString(h[:]) != sum {
			t.Errorf("SHA256SUMS: wrong sum for %s", name)
		}
		listed++
	}
	if listed != 2 {
		t.Errorf("SHA256SUMS lists %d files, want the archive and the .deb:\n%s", listed, sums)
	}
}
