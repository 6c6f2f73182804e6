package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mos-tool/mos/port"
)

// commandTree builds the command tree as execute does.
func commandTree() *cobra.Command {
	a := newApp(&bytes.Buffer{}, &bytes.Buffer{})
	root := newRootCmd(a)
	addCompletions(root, a)
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	return root
}

// walkCommands calls f for every visible command of the tree, commands
// added by anyone included: this is what catches a new command without
// help at merge time.
func walkCommands(c *cobra.Command, f func(*cobra.Command)) {
	if c.Hidden {
		return
	}
	f(c)
	for _, sub := range c.Commands() {
		walkCommands(sub, f)
	}
}

func TestEveryCommandTeaches(t *testing.T) {
	n := 0
	walkCommands(commandTree(), func(c *cobra.Command) {
		n++
		if strings.TrimSpace(c.Short) == "" {
			t.Errorf("%s: no Short description", c.CommandPath())
		}
		if strings.TrimSpace(c.Long) == "" {
			t.Errorf("%s: no Long description", c.CommandPath())
		}
		// Help topics are pages, not commands: there is nothing to run.
		if c.IsAdditionalHelpTopicCommand() {
			return
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s: no Example", c.CommandPath())
		}
		cont := false // the line before ended in a backslash
		for _, line := range strings.Split(c.Example, "\n") {
			was := cont
			cont = strings.HasSuffix(line, "\\")
			if line != "" && !was && !strings.HasPrefix(strings.TrimSpace(line), "mos ") &&
				!strings.HasPrefix(strings.TrimSpace(line), "MOS_") && !strings.HasPrefix(strings.TrimSpace(line), "#") &&
				!strings.Contains(line, "| mos ") && !strings.Contains(line, "$(mos ") && !strings.HasPrefix(strings.TrimSpace(line), "man ") &&
				!strings.HasPrefix(strings.TrimSpace(line), "source ") && !strings.HasPrefix(strings.TrimSpace(line), "echo ") && !strings.HasPrefix(strings.TrimSpace(line), "source <(mos ") {
				t.Errorf("%s: example line %q runs no mos command", c.CommandPath(), line)
			}
		}
	})
	if n < 25 {
		t.Errorf("walked only %d commands", n)
	}
}

func TestHelpTopics(t *testing.T) {
	tests := []struct{ topic, want string }{
		{"port-names", "rfc2217://HOST:PORT"},
		{"reset", "D0|R1|W100|D1|R0|W50|D0"},
		{"bundles", "flasher_args.json"},
		{"exit-codes", "wifi_wrong_password"},
		{"virtual-device", "sim://CHIP"},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			r := mos{}.run(t, "help", tt.topic)
			if r.code != 0 || !strings.Contains(r.stdout, tt.want) {
				t.Fatalf("exit %d, stdout lacks %q:\n%s%s", r.code, tt.want, r.stdout, r.stderr)
			}
		})
	}
	r := mos{}.run(t, "--help")
	for _, tt := range tests {
		if !strings.Contains(r.stdout, "mos "+tt.topic+" ") {
			t.Errorf("mos --help does not list topic %s", tt.topic)
		}
	}
}

func TestEnvironmentFlags(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		code int
		// check inspects the parsed options; nil when the run must fail.
		check func(t *testing.T, r outcome)
		want  string // in stdout+stderr
	}{
		{"global", map[string]string{"MOS_BAUD": "460800", "MOS_TIMEOUT": "7s"}, []string{"ports"}, 0,
			func(t *testing.T, r outcome) {
				if r.app.opts.Baud != 460800 || r.app.opts.Timeout.String() != "7s" {
					t.Errorf("opts %+v", r.app.opts)
				}
			}, ""},
		{"command line wins", map[string]string{"MOS_BAUD": "460800"}, []string{"ports", "--baud", "230400"}, 0,
			func(t *testing.T, r outcome) {
				if r.app.opts.Baud != 230400 {
					t.Errorf("baud %d, want the command line's 230400", r.app.opts.Baud)
				}
			}, ""},
		{"bool", map[string]string{"MOS_JSON": "true"}, []string{"version"}, 0, nil, `"result"`},
		{"bad value names the variable", map[string]string{"MOS_BAUD": "fast"}, []string{"ports"}, 2, nil, "MOS_BAUD"},
		{"command flag with dashes", map[string]string{"MOS_FLASH_MODE": "qqq"},
			[]string{"--port", "sim://esp32?fast=1", "flash", "0x1000:nofile.bin"}, 2, nil, "qqq"},
		{"unset is no value", map[string]string{"MOS_FLASH_MODE": ""},
			[]string{"--port", "sim://esp32?fast=1", "flash", "zz:file.bin"}, 2, nil, "zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{env: tt.env}.run(t, tt.args...)
			if r.code != tt.code {
				t.Fatalf("exit %d, want %d\n%s%s", r.code, tt.code, r.stdout, r.stderr)
			}
			if tt.check != nil {
				tt.check(t, r)
			}
			if !strings.Contains(r.stdout+r.stderr, tt.want) {
				t.Errorf("output lacks %q:\n%s%s", tt.want, r.stdout, r.stderr)
			}
		})
	}
	if r := (mos{}).run(t, "--help"); !strings.Contains(r.stdout, "MOS_<FLAG>") {
		t.Errorf("mos --help does not mention MOS_<FLAG>:\n%s", r.stdout)
	}
}

func TestCompletion(t *testing.T) {
	ports := func() ([]port.Info, error) {
		return []port.Info{{Name: "/dev/ttyUSB7", USB: true, Bridge: "CP210x"}}, nil
	}
	tests := []struct {
		name string
		args []string
		want []string
		not  []string
	}{
		{"ports", []string{"flash", "--port", ""}, []string{"/dev/ttyUSB7\tCP210x", "sim://esp32\t", ":4"}, nil},
		{"global port on a device command", []string{"ls", "-p", ""}, []string{"sim://esp8266"}, nil},
		{"chip", []string{"flash", "--chip", ""}, []string{"esp32c3", "esp8266", ":4"}, nil},
		{"reset", []string{"chip-info", "--reset", ""}, []string{"auto\t", "usb-jtag\t", "none\t"}, nil},
		{"flash size", []string{"flash", "--flash-size", ""}, []string{"detect", "4M"}, nil},
		{"bundle files", []string{"flash", ""}, []string{"zip", "json", "bin", ":8"}, nil},
		{"provision takes zips", []string{"provision", ""}, []string{"zip", ":8"}, []string{"json"}},
		{"config keys without a port", []string{"config", "get", ""}, []string{":4"}, []string{"wifi."}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mos{listPorts: ports}.run(t, append([]string{"__complete"}, tt.args...)...)
			if r.code != 0 {
				t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("completions lack %q:\n%s", w, r.stdout)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(r.stdout, w) {
					t.Errorf("completions hold %q:\n%s", w, r.stdout)
				}
			}
		})
	}
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := mos{}.run(t, "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "__complete") {
			t.Errorf("completion %s: exit %d, %d bytes", shell, r.code, len(r.stdout))
		}
	}
}

func TestCompletionConfigKeysFromDevice(t *testing.T) {
	url := fastDemo(t)
	r := mos{}.run(t, "__complete", "config", "set", "--port", url, "wifi.sta.s")
	if r.code != 0 || !strings.Contains(r.stdout, "wifi.sta.ssid=\n") || !strings.Contains(r.stdout, ":6") {
		t.Fatalf("exit %d, want wifi.sta.ssid= with NoSpace:\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.Contains(r.stdout, "debug.level") {
		t.Errorf("keys not filtered by the prefix typed:\n%s", r.stdout)
	}
}

// roffText undoes what go-md2man does to plain text, so a man page can be
// compared with the help text it came from.
var roffEscapes = strings.NewReplacer(`\-`, "-", `\\`, `\`, `\fB`, "", `\fP`, "", `\fI`, "", `\fR`, "", `\(aq`, "'", `\(lq`, `"`, `\(rq`, `"`, `\e`, `\`, `\&`, "", `\[aq]`, "'", `\~`, " ", `\(ti`, "~", `\(ha`, "^", `\|`, "")

var spaces = regexp.MustCompile(`\s+`)

func normalize(s string) string { return strings.TrimSpace(spaces.ReplaceAllString(s, " ")) }

func TestManPagesMatchHelp(t *testing.T) {
	dir := t.TempDir()
	r := mos{}.run(t, "man", dir)
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	root := commandTree()
	n := 0
	walkCommands(root, func(c *cobra.Command) {
		if c.Name() == "help" { // cobra's own; the topics are its pages
			return
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		if c.IsAdditionalHelpTopicCommand() {
			name = strings.TrimSuffix(name, ".1") + ".7"
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", c.CommandPath(), err)
			return
		}
		n++
		var lines []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, ".") { // a roff request, not text
				continue
			}
			lines = append(lines, roffEscapes.Replace(l))
		}
		page := normalize(strings.Join(lines, " "))
		for _, text := range []string{c.Short, c.Long, c.Example} {
			// Each line of help must be in the page, in order of words.
			for _, line := range strings.Split(text, "\n") {
				if l := normalize(line); l != "" && !strings.Contains(page, l) {
					t.Errorf("%s: the man page lacks %q", name, l)
				}
			}
		}
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !f.Hidden && !strings.Contains(page, "--"+f.Name) {
				t.Errorf("%s: the man page lacks --%s", name, f.Name)
			}
		})
	})
	if n < 25 {
		t.Errorf("checked only %d pages", n)
	}
}
