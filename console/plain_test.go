package console

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mos-tool/mos/port"
)

// scriptPort returns its bytes once, then times out; Close ends the
// session's use of it.
type scriptPort struct {
	mu   sync.Mutex
	data []byte
	port.Port
}

func (p *scriptPort) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.data) == 0 {
		time.Sleep(5 * time.Millisecond)
		return 0, port.ErrTimeout
	}
	n := copy(b, p.data)
	p.data = p.data[n:]
	return n, nil
}
func (p *scriptPort) SetReadTimeout(time.Duration) error { return nil }
func (p *scriptPort) Close() error                       { return nil }

func TestPlain(t *testing.T) {
	const stream = "ets Jun  8 2016 00:22:57\r\n" +
		"\x1b[0;31mE (31) wifi: connect failed\x1b[0m\r\n" +
		`"""{"id":1,"result":{"ok":true}}0a0b0c0d"""` + "\n" +
		"mgos_init.c:33          Init done\r\n" +
		"mos> "
	tests := []struct {
		name string
		opts Options
		two  bool
		want string
	}{
		{"default", Options{}, false, "ets Jun  8 2016 00:22:57\nE (31) wifi: connect failed\nmgos_init.c:33          Init done\nmos> \n"},
		{"rpc shown", Options{ShowRPC: true}, false, "ets Jun  8 2016 00:22:57\nE (31) wifi: connect failed\nRPC {\n  \"id\": 1,\n  \"result\": {\n    \"ok\": true\n  }\n}\nmgos_init.c:33          Init done\nmos> \n"},
		{"filter", Options{Filter: Filter{text: "init"}}, false, "mgos_init.c:33          Init done\n"},
		{"control", Options{Control: true, Filter: Filter{text: "wifi"}}, false, "^[[0;31mE (31) wifi: connect failed^[[0m^M^J\n"},
		{"hex", Options{Hex: true, Filter: Filter{text: "ets"}}, false, "65 74 73 20 4a 75 6e 20 20 38 20 32 30 31 36 20 30 30 3a 32 32 3a 35 37 0d 0a  |ets Jun  8 2016 00:22:57..|\n"},
		{"two devices", Options{Filter: Filter{text: "init"}}, true, "[a] mgos_init.c:33          Init done\n[b] mgos_init.c:33          Init done\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ports := []string{"sim://a"}
			if tc.two {
				ports = []string{"sim://a", "sim://b"}
			}
			var mu sync.Mutex
			opened := 0
			open := func(ctx context.Context, addr string, baud int) (port.Port, error) {
				mu.Lock()
				opened++
				mu.Unlock()
				return &scriptPort{data: []byte(stream)}, nil
			}
			s, err := NewSession(ctx, Config{Ports: ports, Open: open})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			go func() {
				// Stop once everything had time to arrive.
				time.Sleep(300 * time.Millisecond)
				cancel()
			}()
			if err := Plain(ctx, s, tc.opts, &out, nil); err != nil {
				t.Fatal(err)
			}
			got := out.String()
			if tc.two {
				// The two devices' lines interleave in any order.
				ls := strings.Split(strings.TrimSpace(got), "\n")
				if len(ls) == 2 && ls[0] > ls[1] {
					ls[0], ls[1] = ls[1], ls[0]
				}
				got = strings.Join(ls, "\n") + "\n"
			}
			if got != tc.want {
				t.Errorf("got\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
